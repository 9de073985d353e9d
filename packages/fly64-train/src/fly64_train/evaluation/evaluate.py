"""Phase E+ evaluation (SPEC §8): reconstruct a test split from a bundle and score it.

Steps, for one bundle and one DATA-001 test NPZ:

1. Load the bundle through :func:`fly64_train.bundle.load_bundle` (any backend,
   numpy in and out) and predict the object patch at every test position
   (batched; diffraction read lazily by :func:`fly64_train.evaluation.predict.predict_patches`).
   No framework is imported here: the backend behind the bundle does that.
2. Stitch the patches in the object frame with weights ``|P|^2 * support``
   (:func:`fly64_train.evaluation.stitch.stitch`).
3. Coverage: a pixel is *covered* when its summed weight is at least
   ``coverage_fraction`` (default 0.1) of one probe footprint's peak weight,
   i.e. some probe lit it with at least 10 % of its peak intensity. The scored
   region is the bounding box of the covered pixels (the scanned region plus
   the probe's reach, not the whole object and not the other split).
4. Alignment, fitted on covered pixels only: the amplitude's global scale (least
   squares) and the phase's offset and linear ramp (see
   :func:`fly64_train.evaluation.metrics.align_phase`). No sub-pixel shift is applied:
   positions are known exactly, so a shift would be a real error; the shift
   measured by ``skimage.registration.phase_cross_correlation`` is recorded as a
   diagnostic (``shift_px``).
5. Score amplitude and phase against ``objectGuess`` on the covered pixels of
   the region (:func:`fly64_train.evaluation.metrics.score_pair` with the coverage mask):
   pixels no probe lit (gaps between the footprints of a sparse scan) enter no
   metric, not even through an SSIM window or the FRC's Fourier transform. The
   covered fraction is recorded (``coverage``) so gaps are visible in the report.
6. For the saved arrays and the figure, uncovered pixels are filled with the
   mean of the covered aligned values (and greyed in the figure).

:func:`evaluate_job` does all that for a training job and writes
``reconstruction.npz``, ``reconstruction.png`` and ``reconstruction.h5`` (a ptychodus
product: :func:`fly64_train.evaluation.product.write_product`) into the job directory.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fly64_train.backends import check_device
from fly64_train.evaluation.metrics import ComponentScores, PhaseAlignment, align_amplitude, align_phase, score_pair

if TYPE_CHECKING:
    from fly64_train.backends import LoadedModel

RECONSTRUCTION_NPZ = "reconstruction.npz"
RECONSTRUCTION_PNG = "reconstruction.png"
RECONSTRUCTION_H5 = "reconstruction.h5"
FRC_UNIT = "cycles/pixel"


@dataclass
class EvaluationConfig:
    """How to reconstruct and score."""

    ms_ssim_sigma: float = 1.0
    """Gaussian window sigma of MS-SSIM (the design's ``metrics_config``)."""
    neighbor_count: int | None = None
    """K of the gs2 grouping of the test positions; ``None``: what the bundle was trained with, else the design's."""
    grouping_seed: int | None = None
    """Seed of that grouping; ``None``: the bundle's recorded one, else the design's."""
    batch_size: int = 32
    """Groups per forward pass."""
    coverage_fraction: float = 0.1
    """Threshold of the coverage mask, as a fraction of one footprint's peak weight."""
    device: str = "auto"
    """Where the backend runs the model and its stitch: ``auto`` (a GPU when present), ``cpu``, ``cuda``, ..."""
    information: bool = True
    """Also compute the held-out information score (a second prediction, from half of the photons)."""

    def check(self) -> None:
        """Refuse values no evaluation can use, naming the field."""
        if not self.ms_ssim_sigma > 0:
            raise ValueError(f"ms_ssim_sigma must be positive, got {self.ms_ssim_sigma}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0 < self.coverage_fraction <= 1:
            raise ValueError(f"coverage_fraction must be in (0, 1], got {self.coverage_fraction}")
        for name in ("neighbor_count", "grouping_seed"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        check_device(self.device)  # the seam's device names (fly64_train.backends)


@dataclass
class Evaluation:
    """One reconstruction, aligned and scored on its region (arrays are region-sized)."""

    amplitude: np.ndarray
    phase: np.ndarray
    amplitude_true: np.ndarray
    phase_true: np.ndarray
    covered: np.ndarray
    stitched: np.ndarray
    region: tuple[int, int, int, int]
    amplitude_scores: ComponentScores
    phase_scores: ComponentScores
    amplitude_scale: float
    phase_alignment: PhaseAlignment
    shift_px: tuple[float, float]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def coverage(self) -> float:
        return float(self.covered.mean())

    def metrics(self) -> dict[str, Any]:
        """The manifest's ``metrics`` object (schema ``training_manifest`` #/$defs/metrics).

        FRC crossings are in cycles/pixel (Nyquist 0.5) and null when the curve
        never falls below the threshold; PSNR is null only for a perfect match.
        """
        r0, r1, c0, c1 = self.region
        return {
            "amplitude": self.amplitude_scores.as_json(),
            "phase": self.phase_scores.as_json(),
            "frc_unit": FRC_UNIT,
            "coverage": round(self.coverage, 6),
            "region": {"row0": r0, "row1": r1, "col0": c0, "col1": c1},
            "alignment": {
                "amplitude_scale": round(self.amplitude_scale, 6),
                "phase_offset_rad": round(float(self.phase_alignment.offset), 6),
                "phase_ramp_rad_per_px": [round(float(self.phase_alignment.gy), 8),
                                          round(float(self.phase_alignment.gx), 8)],
                "shift_px": [round(float(s), 3) for s in self.shift_px],
            },
            **self.extra,
        }


def coverage_mask(weight: np.ndarray, footprint_peak: float, fraction: float = 0.1) -> np.ndarray:
    """Pixels lit by the scan with at least ``fraction`` of one footprint's peak weight."""
    return weight >= fraction * footprint_peak


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(row0, row1, col0, col1)`` (half-open) of the True pixels of ``mask``."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("no pixel is covered by the scan: nothing to evaluate")
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def score_stitched(stitched: np.ndarray, weight: np.ndarray, truth: np.ndarray, footprint_peak: float,
                   cfg: EvaluationConfig | None = None) -> Evaluation:
    """Crop, align, fill and score a stitched object against the ground truth (steps 3-6)."""
    from skimage.registration import phase_cross_correlation

    cfg = cfg or EvaluationConfig()
    covered_full = coverage_mask(weight, footprint_peak, cfg.coverage_fraction)
    r0, r1, c0, c1 = bounding_box(covered_full)
    crop = (slice(r0, r1), slice(c0, c1))
    image, ref, covered = stitched[crop], truth[crop], covered_full[crop]
    amp_true = np.abs(ref).astype(np.float64)
    phase_true = np.angle(ref).astype(np.float64)

    amp, scale = align_amplitude(np.abs(image), amp_true, covered)
    phase, plane = align_phase(np.angle(image), phase_true, covered)
    amp = np.where(covered, amp, amp[covered].mean())
    phase = np.where(covered, phase, phase[covered].mean())

    shift, _, _ = phase_cross_correlation(amp_true, amp, upsample_factor=10, normalization=None)
    floor = flat_floor(amp_true, phase_true, covered, cfg)
    return Evaluation(
        amplitude=amp, phase=phase, amplitude_true=amp_true, phase_true=phase_true, covered=covered,
        stitched=image.astype(np.complex64), region=(r0, r1, c0, c1),
        amplitude_scores=score_pair(amp, amp_true, ms_ssim_sigma=cfg.ms_ssim_sigma, mask=covered),
        phase_scores=score_pair(phase, phase_true, ms_ssim_sigma=cfg.ms_ssim_sigma, wrapped=True, mask=covered),
        amplitude_scale=scale, phase_alignment=plane, shift_px=(float(shift[0]), float(shift[1])),
        extra={"floor": floor},
    )


def flat_floor(amp_true: np.ndarray, phase_true: np.ndarray, covered: np.ndarray,
           cfg: EvaluationConfig) -> dict[str, dict[str, float | None]]:
    """Scores of a structureless object (constant amplitude and phase) put through the same alignment.

    The alignment fits a scale and a phase plane to the truth, so even a flat
    reconstruction scores above zero (the best plane through the true phase);
    this is that floor, for reading the real scores against. It is scored on
    the same covered pixels as the reconstruction.
    """
    flat = np.ones_like(amp_true)
    amp, _ = align_amplitude(flat, amp_true, covered)
    phase, _ = align_phase(np.zeros_like(phase_true), phase_true, covered)
    return {"amplitude": score_pair(amp, amp_true, ms_ssim_sigma=cfg.ms_ssim_sigma, mask=covered).as_json(),
            "phase": score_pair(phase, phase_true, ms_ssim_sigma=cfg.ms_ssim_sigma, wrapped=True,
                                mask=covered).as_json()}


def reconstruct(model: LoadedModel, test_path: str | os.PathLike,
                cfg: EvaluationConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Predict and stitch a test split: ``(stitched, weight, objectGuess, footprint peak weight)``.

    ``cfg.neighbor_count`` and ``cfg.grouping_seed`` must be resolved (see :func:`grouping_for`).
    """
    from fly64_train.data.reader import npz_members
    from fly64_train.evaluation.predict import predict_patches

    if cfg.neighbor_count is None or cfg.grouping_seed is None:
        raise ValueError("reconstruct needs a resolved grouping (neighbor_count and grouping_seed)")
    # predict_patches validates the file (DATA-001) before reading any pattern.
    predicted = predict_patches(model, test_path, neighbor_count=cfg.neighbor_count,
                                grouping_seed=cfg.grouping_seed, batch_size=cfg.batch_size)
    readers = npz_members(test_path)
    truth = readers["objectGuess"].read_all()
    probe = readers["probeGuess"].read_all()
    weight = (np.abs(probe).astype(np.float64) ** 2) * model.support().astype(np.float64)
    # The model's own stitch: on its device (a GPU scatters there), else the numpy stitch.
    image, summed = model.stitch(predicted.patches, predicted.ycoords, predicted.xcoords, truth.shape, weight)
    return image, summed, truth, float(weight.max())


def grouping_for(manifest: dict[str, Any], cfg: EvaluationConfig) -> EvaluationConfig:
    """``cfg`` with the grouping resolved: as asked, else as the bundle recorded, else the study design's."""
    from fly64_data.design import get_study_design

    recorded = manifest.get("config", {}) or {}
    design = get_study_design()
    neighbor = cfg.neighbor_count if cfg.neighbor_count is not None else recorded.get(
        "neighbor_count", design.neighbor_count)
    seed = cfg.grouping_seed if cfg.grouping_seed is not None else recorded.get(
        "grouping_seed", int(design.rng_seeds["grouping"]))
    return replace(cfg, neighbor_count=int(neighbor), grouping_seed=int(seed))


def evaluate_bundle(bundle_path: str | os.PathLike, test_path: str | os.PathLike,
                    cfg: EvaluationConfig | None = None, *, expected_sha256: str | None = None) -> Evaluation:
    """Load a bundle (any backend), reconstruct ``test_path`` and score it against its ``objectGuess``."""
    from fly64_train.bundle import load_bundle, read_manifest

    cfg = cfg or EvaluationConfig()
    cfg.check()
    # Loading first checks the file's digest (when given), so the manifest read next is the verified one.
    model = load_bundle(bundle_path, expected_sha256=expected_sha256, device=cfg.device)
    cfg = grouping_for(read_manifest(bundle_path), cfg)
    # Timed alone (no bundle loading, no scoring): Phase G compares it per 1,000 patterns with the
    # iterative method's reconstruction time. The stitch returns numpy, so a GPU's queue has drained.
    started = time.perf_counter()
    image, weight, truth, peak = reconstruct(model, test_path, cfg)
    wall_s = time.perf_counter() - started
    evaluation = score_stitched(image, weight, truth, peak, cfg)
    evaluation.extra["reconstruction"] = {
        "wall_s": round(wall_s, 4), "n_patterns": n_patterns(test_path),
        # The backend's resolved device (``auto`` became cpu or cuda:K); the TF backend names it its own way.
        "device": str(getattr(model, "device", cfg.device)),
    }
    if cfg.information:
        from fly64_train.evaluation.information import model_information

        evaluation.extra["information"] = model_information(
            model, test_path, neighbor_count=cfg.neighbor_count, grouping_seed=cfg.grouping_seed,
            batch_size=cfg.batch_size).as_json()
    return evaluation


def n_patterns(test_path: str | os.PathLike) -> int:
    """Scan positions of a DATA-001 file, read from the array header (nothing loaded)."""
    from fly64_train.data.reader import npz_members

    return int(npz_members(test_path)["xcoords"].shape[0])


def save_reconstruction(evaluation: Evaluation, path: str | os.PathLike) -> Path:
    """Write the region's arrays and FRC curves as a compressed NPZ (no pickled objects), atomically."""
    from fly64_manifest import atomic_write

    amp_frc, ph_frc = evaluation.amplitude_scores.frc_curve, evaluation.phase_scores.frc_curve
    arrays = {
        "amplitude": evaluation.amplitude.astype(np.float32),
        "phase": evaluation.phase.astype(np.float32),
        "amplitude_true": evaluation.amplitude_true.astype(np.float32),
        "phase_true": evaluation.phase_true.astype(np.float32),
        "covered": evaluation.covered,
        "stitched": evaluation.stitched,
        "region": np.asarray(evaluation.region, dtype=np.int64),
        "frc_frequency": amp_frc.frequency,
        "frc_amplitude": amp_frc.curve,
        "frc_phase": ph_frc.curve,
    }
    path = Path(path)
    with atomic_write(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def evaluate_job(bundle_path: str | os.PathLike, test_path: str | os.PathLike, job_dir: str | os.PathLike,
                 cfg: EvaluationConfig | None = None, title: str | None = None,
                 expected_sha256: str | None = None, losses: list[float] | tuple[float, ...] = ()) -> dict[str, Any]:
    """Evaluate a training job's bundle on its test split; write ``reconstruction.{npz,png,h5}`` in ``job_dir``.

    ``expected_sha256`` (the digest the training manifest recorded) refuses a bundle whose bytes differ.
    ``losses`` (training loss per epoch, may be empty) go into the product file.

    Returns
    -------
    dict
        The manifest ``metrics`` object (see :meth:`Evaluation.metrics`).
    """
    from fly64_train.evaluation.figures import plot_reconstruction

    job_dir = Path(job_dir)
    evaluation = evaluate_bundle(bundle_path, test_path, cfg, expected_sha256=expected_sha256)
    save_reconstruction(evaluation, job_dir / RECONSTRUCTION_NPZ)
    plot_reconstruction(evaluation, job_dir / RECONSTRUCTION_PNG, title=title or str(job_dir))
    save_product(evaluation, test_path, job_dir / RECONSTRUCTION_H5, name=title or str(job_dir), losses=losses)
    return evaluation.metrics()


def save_product(evaluation: Evaluation, test_path: str | os.PathLike, path: str | os.PathLike, *, name: str,
                 losses: list[float] | tuple[float, ...] = ()) -> Path:
    """Write the scored region as a ptychodus product: stitched object, probe, test positions in metres.

    The stitched (unaligned) complex object of the region is written, so a
    reader sees what the model produced. Object pixel ``(i, j)`` sits at
    ``(i, j)`` in the positions' pixel frame (a position is a patch centre),
    so the region's centre is the mean of its first and last pixel index.
    The geometry is nominal (:class:`fly64_train.evaluation.product.NominalGeometry`).
    """
    from fly64_data.contract import read_metadata
    from fly64_train.data.reader import npz_members
    from fly64_train.evaluation.product import NominalGeometry, ProductMetadata, write_product

    readers = npz_members(test_path)
    probe = readers["probeGuess"].read_all()
    positions = np.stack([readers["ycoords"].read_all(), readers["xcoords"].read_all()], axis=1)
    indexes = readers["scan_index"].read_all() if "scan_index" in readers else np.arange(len(positions))
    geometry = NominalGeometry()
    pixel = geometry.object_pixel_size_m(int(probe.shape[0]))
    r0, r1, c0, c1 = evaluation.region
    dose = read_metadata(test_path).get("dose")
    comments = (f"fly64 study reconstruction of {Path(test_path).name} (scored region rows {r0}:{r1}, cols "
                f"{c0}:{c1}); simulated data: the geometry (photon energy, detector distance, pixel size) is "
                "nominal, see docs/evaluation.md")
    metadata = ProductMetadata.nominal(name, comments, geometry,
                                       probe_photon_count=float(dose) if isinstance(dose, (int, float)) else 0.0)
    return write_product(path, object_patch=evaluation.stitched, pixel_size_m=pixel,
                         center_m=((r0 + r1 - 1) / 2 * pixel, (c0 + c1 - 1) / 2 * pixel), probe=probe,
                         positions_px=positions, indexes=indexes, metadata=metadata, losses=losses)
