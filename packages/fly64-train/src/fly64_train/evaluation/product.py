"""``reconstruction.h5``: a reconstruction as a ptychodus product file.

The layout is the one ptychodus 1.7 reads with ``ptychodus.api.io.load_product``
(and writes with ``save_product``), so the field's tools open our results as they
open their own:

=============================  =========  =============================================================
name                           kind       content
=============================  =========  =============================================================
``name``, ``comments``         file attr  strings
``detector_object_distance_m`` file attr  float (required by the reader)
``photon_energy_eV``           file attr  float (required; ``probe_energy_eV`` is written too, the
                                          pre-1.7 spelling older readers look for)
``probe_photon_count``,        file attr  floats
``exposure_time_s``,
``mass_attenuation_m2_per_kg``,
``tomography_angle_deg``,
``focus_object_distance_m``,
``tilt_angle_deg``
``far_field``                  file attr  bool
``object``                     dataset    complex (1, H, W): one layer; attrs ``center_x_m``,
                                          ``center_y_m``, ``pixel_width_m``, ``pixel_height_m``
``object_layer_spacing_m``     dataset    float (0,): a single layer has no spacing
``probe``                      dataset    complex (1, 1, N, N): one incoherent mode, one OPR mode;
                                          attrs ``pixel_width_m``, ``pixel_height_m``
``probe_position_indexes``     dataset    int64 (n,)
``probe_position_x_m``,        dataset    float64 (n,), metres, in the object's frame
``probe_position_y_m``
``loss_epochs``,               dataset    int64 (k,), float64 (k,): the training loss curve (may be
``loss_values``                           empty; pre-1.7 readers need the datasets to exist)
=============================  =========  =============================================================

Only numpy and h5py are used, so the writer runs wherever the evaluation does,
whichever training framework produced the model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from fly64_manifest import atomic_write

if TYPE_CHECKING:
    from fly64_train.data.reader import DatasetInfo
    from fly64_train.evaluation.scoring import Evaluation

#: Speed of light times Planck's constant, in eV * m: wavelength = HC_EV_M / energy.
HC_EV_M = 1.239841984e-6


@dataclass(frozen=True)
class NominalGeometry:
    """The experiment geometry the simulated study stands for.

    The simulation works in pixels and never uses these numbers: they are nominal,
    chosen so that a product opens with sensible units, and they are documented
    in docs/evaluation.md.

    Attributes
    ----------
    photon_energy_eV : float
        Photon energy (8 keV, a common hard X-ray ptychography energy).
    detector_distance_m : float
        Sample-to-detector distance.
    detector_pixel_m : float
        Detector pixel pitch (75 um, an Eiger-class detector).
    """

    photon_energy_eV: float = 8000.0  # noqa: N815 (ptychodus spells it so)
    detector_distance_m: float = 2.0
    detector_pixel_m: float = 75e-6

    def check(self) -> None:
        """Raise ValueError unless every length and the energy are positive and finite."""
        for name in ("photon_energy_eV", "detector_distance_m", "detector_pixel_m"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive and finite, got {value}")

    @property
    def wavelength_m(self) -> float:
        return HC_EV_M / self.photon_energy_eV

    def object_pixel_size_m(self, patch_size: int) -> float:
        """Far-field sampling of an N-pixel patch: wavelength * distance / (N * detector pixel)."""
        return self.wavelength_m * self.detector_distance_m / (patch_size * self.detector_pixel_m)


@dataclass(frozen=True)
class ProductMetadata:
    """The file-level attributes of a product (ptychodus' ``ProductMetadata``).

    Attributes
    ----------
    name : str
        Product name shown by ptychodus (e.g. ``dose_1000/dense/gs2``).
    comments : str
        Free text: provenance, the nominal-geometry note.
    detector_distance_m : float
        Sample-to-detector distance (``detector_object_distance_m``).
    photon_energy_eV : float
        Photon energy.
    probe_photon_count : float
        Photons per diffraction pattern (the dose); 0 when unknown.
    exposure_time_s : float
        Exposure per pattern; 0 when unknown (simulated data has none).
    mass_attenuation_m2_per_kg : float
        Sample mass attenuation; 0 when unknown.
    tomography_angle_deg : float
        Rotation of the sample; 0 for a single projection.
    """

    name: str
    comments: str
    detector_distance_m: float
    photon_energy_eV: float  # noqa: N815 (ptychodus spells it so)
    probe_photon_count: float = 0.0
    exposure_time_s: float = 0.0
    mass_attenuation_m2_per_kg: float = 0.0
    tomography_angle_deg: float = 0.0

    @classmethod
    def nominal(cls, name: str, comments: str, geometry: NominalGeometry, probe_photon_count: float = 0.0
                ) -> ProductMetadata:
        """Metadata for the study's simulated geometry."""
        return cls(name=name, comments=comments, detector_distance_m=geometry.detector_distance_m,
                   photon_energy_eV=geometry.photon_energy_eV, probe_photon_count=probe_photon_count)

    def check(self) -> None:
        """Raise ValueError for an empty name or a non-physical number."""
        if not self.name:
            raise ValueError("product name must not be empty")
        for name in ("detector_distance_m", "photon_energy_eV"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive and finite, got {value}")
        for name in ("probe_photon_count", "exposure_time_s", "mass_attenuation_m2_per_kg"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be non-negative and finite, got {value}")
        if not math.isfinite(self.tomography_angle_deg):
            raise ValueError(f"tomography_angle_deg must be finite, got {self.tomography_angle_deg}")


def _complex_2d(name: str, array: np.ndarray) -> np.ndarray:
    arr = np.asarray(array)
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {arr.shape}")
    if not np.iscomplexobj(arr):
        raise ValueError(f"{name} must be complex, got {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds non-finite values")
    return arr


def _positions(positions_px: np.ndarray, indexes: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pos = np.asarray(positions_px, dtype=np.float64)
    idx = np.asarray(indexes)
    if pos.ndim != 2 or pos.shape[1] != 2:
        raise ValueError(f"positions_px must be (n, 2) as (y, x), got shape {pos.shape}")
    if idx.shape != (pos.shape[0],):
        raise ValueError(f"indexes must be ({pos.shape[0]},) like positions_px, got shape {idx.shape}")
    if not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"indexes must be integers, got {idx.dtype}")
    if not np.isfinite(pos).all():
        raise ValueError("positions_px holds non-finite values")
    return pos, idx.astype(np.int64)


def write_product(path: str | os.PathLike, *, object_patch: np.ndarray, pixel_size_m: float,
                  center_m: tuple[float, float], probe: np.ndarray, positions_px: np.ndarray,
                  indexes: Sequence[int] | np.ndarray, metadata: ProductMetadata,
                  losses: Sequence[float] = ()) -> Path:
    """Write a ptychodus product file atomically and return its path.

    Parameters
    ----------
    path : path-like
        Destination (``<job>/reconstruction.h5``); replaced only once complete.
    object_patch : numpy.ndarray
        Complex (H, W) object.
    pixel_size_m : float
        Object (and probe) pixel size in metres, square pixels.
    center_m : (float, float)
        Centre ``(y, x)`` of ``object_patch`` in metres, in the frame of the positions.
    probe : numpy.ndarray
        Complex (N, N) probe, sampled like the object.
    positions_px : numpy.ndarray
        (n, 2) probe positions ``(y, x)`` in object pixels; written in metres
        (``pixel_size_m`` times), the frame ``center_m`` is given in.
    indexes : sequence of int
        (n,) scan index of each position.
    metadata : ProductMetadata
        File-level attributes.
    losses : sequence of float
        Training loss per epoch (epoch numbers 0, 1, ...); may be empty.

    Raises
    ------
    ValueError
        One line naming ``path`` and the problem; nothing is written.
    """
    path = Path(path)
    try:
        obj = _complex_2d("object_patch", object_patch)
        prb = _complex_2d("probe", probe)
        if prb.shape[0] != prb.shape[1]:
            raise ValueError(f"probe must be square, got shape {prb.shape}")
        pos, idx = _positions(positions_px, indexes)
        if not (math.isfinite(pixel_size_m) and pixel_size_m > 0):
            raise ValueError(f"pixel_size_m must be positive and finite, got {pixel_size_m}")
        cy, cx = (float(c) for c in center_m)
        if not (math.isfinite(cy) and math.isfinite(cx)):
            raise ValueError(f"center_m must be finite, got {center_m}")
        loss_values = np.asarray(losses, dtype=np.float64).ravel()
        metadata.check()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {' '.join(str(exc).split())}") from None

    with atomic_write(path, "w+b") as fh, h5py.File(fh, "w") as h5:
        attrs = h5.attrs
        attrs["name"] = metadata.name
        attrs["comments"] = metadata.comments
        attrs["detector_object_distance_m"] = float(metadata.detector_distance_m)
        attrs["photon_energy_eV"] = float(metadata.photon_energy_eV)
        # ptychodus before 1.7 reads the energy under its old name.
        attrs["probe_energy_eV"] = float(metadata.photon_energy_eV)
        attrs["probe_photon_count"] = float(metadata.probe_photon_count)
        attrs["exposure_time_s"] = float(metadata.exposure_time_s)
        attrs["mass_attenuation_m2_per_kg"] = float(metadata.mass_attenuation_m2_per_kg)
        attrs["tomography_angle_deg"] = float(metadata.tomography_angle_deg)
        attrs["focus_object_distance_m"] = 0.0  # no focusing optic is modelled
        attrs["tilt_angle_deg"] = 0.0
        attrs["far_field"] = True  # the simulator propagates to the far field

        h5.create_dataset("probe_position_indexes", data=idx)
        h5.create_dataset("probe_position_x_m", data=pos[:, 1] * pixel_size_m)
        h5.create_dataset("probe_position_y_m", data=pos[:, 0] * pixel_size_m)

        h5_probe = h5.create_dataset("probe", data=prb[np.newaxis, np.newaxis])
        h5_probe.attrs["pixel_width_m"] = float(pixel_size_m)
        h5_probe.attrs["pixel_height_m"] = float(pixel_size_m)

        h5_object = h5.create_dataset("object", data=obj[np.newaxis])
        h5_object.attrs["center_x_m"] = cx
        h5_object.attrs["center_y_m"] = cy
        h5_object.attrs["pixel_width_m"] = float(pixel_size_m)
        h5_object.attrs["pixel_height_m"] = float(pixel_size_m)
        h5.create_dataset("object_layer_spacing_m", data=np.zeros(0, dtype=np.float64))

        h5.create_dataset("loss_epochs", data=np.arange(loss_values.size, dtype=np.int64))
        h5.create_dataset("loss_values", data=loss_values)
    return path


def save_product(evaluation: Evaluation, test_path: str | os.PathLike | DatasetInfo, path: str | os.PathLike,
                 *, name: str,
                 losses: list[float] | tuple[float, ...] = ()) -> Path:
    """Write the scored region as a ptychodus product: stitched object, probe, test positions in metres.

    The stitched (unaligned) complex object of the region is written, so a
    reader sees what the model produced. Object pixel ``(i, j)`` sits at
    ``(i, j)`` in the positions' pixel frame (a position is a patch centre),
    so the region's centre is the mean of its first and last pixel index.
    The geometry is nominal (:class:`fly64_train.evaluation.product.NominalGeometry`).
    ``test_path``: the test split's file, or the dataset an evaluation already opened (not opened again).
    """
    from fly64_data.contract import read_metadata
    from fly64_train.data.reader import DatasetInfo, npz_members

    if isinstance(test_path, DatasetInfo):
        readers, metadata_of_test, test_path = test_path.readers, test_path.meta, test_path.path
    else:
        readers, metadata_of_test = npz_members(test_path), None
    probe = readers["probeGuess"].read_all()
    positions = np.stack([readers["ycoords"].read_all(), readers["xcoords"].read_all()], axis=1)
    indexes = readers["scan_index"].read_all() if "scan_index" in readers else np.arange(len(positions))
    geometry = NominalGeometry()
    pixel = geometry.object_pixel_size_m(int(probe.shape[0]))
    r0, r1, c0, c1 = evaluation.region
    dose = (metadata_of_test if metadata_of_test is not None else read_metadata(test_path)).get("dose")
    comments = (f"fly64 study reconstruction of {Path(test_path).name} (scored region rows {r0}:{r1}, cols "
                f"{c0}:{c1}); simulated data: the geometry (photon energy, detector distance, pixel size) is "
                "nominal, see docs/evaluation.md")
    metadata = ProductMetadata.nominal(name, comments, geometry,
                                       probe_photon_count=float(dose) if isinstance(dose, (int, float)) else 0.0)
    return write_product(path, object_patch=evaluation.stitched, pixel_size_m=pixel,
                         center_m=((r0 + r1 - 1) / 2 * pixel, (c0 + c1 - 1) / 2 * pixel), probe=probe,
                         positions_px=positions, indexes=indexes, metadata=metadata, losses=losses)
