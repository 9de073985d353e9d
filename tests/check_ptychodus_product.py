"""Check reconstruction.h5 against ptychodus' own product reader (``nox -s ptychodus``).

Two steps, two environments, so ptychodus never becomes a dependency of ours:

    python tests/check_ptychodus_product.py write DIR   # project env: write_product -> DIR/reconstruction.h5
    python tests/check_ptychodus_product.py read DIR    # ptychodus env: load_product, compare field by field

``write`` also leaves ``expected.npz`` (plain arrays, read with allow_pickle=False) beside the product.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def write(folder: Path) -> None:
    from fly64_train.evaluation.product import NominalGeometry, ProductMetadata, write_product

    geometry = NominalGeometry()
    pixel = geometry.object_pixel_size_m(32)
    rng = np.random.default_rng(0)
    obj = (rng.uniform(0.5, 1.0, (40, 56)) * np.exp(1j * rng.uniform(-1, 1, (40, 56)))).astype(np.complex64)
    probe = (rng.standard_normal((32, 32)) + 1j * rng.standard_normal((32, 32))).astype(np.complex64)
    positions = np.array([[16.0, 20.0], [16.0, 28.0], [24.0, 20.0]])
    indexes = np.array([3, 5, 8])
    center = (20.0 * pixel, 28.0 * pixel)
    meta = ProductMetadata.nominal("fly64 check", "nominal geometry", geometry, probe_photon_count=1000.0)
    write_product(folder / "reconstruction.h5", object_patch=obj, pixel_size_m=pixel, center_m=center,
                  probe=probe, positions_px=positions, indexes=indexes, metadata=meta, losses=[2.0, 1.5])
    np.savez(folder / "expected.npz", object=obj, probe=probe, x_m=positions[:, 1] * pixel,
             y_m=positions[:, 0] * pixel, indexes=indexes, pixel=pixel, center=np.array(center))


def read(folder: Path) -> None:
    from ptychodus.api.io import load_product

    product = load_product(folder / "reconstruction.h5")
    with np.load(folder / "expected.npz", allow_pickle=False) as npz:
        want = {k: npz[k] for k in npz.files}
    meta = product.metadata
    assert (meta.name, meta.detector_distance_m, meta.photon_energy_eV) == ("fly64 check", 2.0, 8000.0), meta
    assert meta.probe_photon_count == 1000.0 and meta.far_field
    obj = product.object_
    np.testing.assert_array_equal(obj.get_array()[0], want["object"])
    geometry = obj.get_geometry()
    assert geometry.pixel_width_m == geometry.pixel_height_m == float(want["pixel"])
    assert (geometry.center_y_m, geometry.center_x_m) == tuple(want["center"])
    np.testing.assert_array_equal(np.squeeze(product.probes.get_array()), want["probe"])
    positions = product.probe_positions
    np.testing.assert_array_equal(positions.get_indexes(), want["indexes"])
    np.testing.assert_allclose(positions.get_coordinates_x_m(), want["x_m"])
    np.testing.assert_allclose(positions.get_coordinates_y_m(), want["y_m"])
    assert [float(loss.value) for loss in product.losses] == [2.0, 1.5]
    print(f"ptychodus load_product read {folder / 'reconstruction.h5'}: every field matches")


if __name__ == "__main__":
    step, folder = sys.argv[1], Path(sys.argv[2])
    {"write": write, "read": read}[step](folder)
