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

:func:`score_job` does all that for a training job, returns its typed
:class:`~fly64_train.evaluation.scorecard.Scorecard`, and writes
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

from fly64_train.core.device import check_device

# Scoring and the product writer are framework-free modules of their own, shared with Phase F (fly64-iterative);
# re-exported here for the callers that know them from this module.
from fly64_train.evaluation.product import save_product
from fly64_train.evaluation.refine import RefineConfig
from fly64_train.evaluation.scorecard import ReconstructionTime, Scorecard
from fly64_train.evaluation.scoring import (
    FRC_UNIT,
    Evaluation,
    ScoringConfig,
    bounding_box,
    coverage_mask,
    flat_floor,
    score_stitched,
)

if TYPE_CHECKING:
    from fly64_train.bundle.manifest import BundleManifest
    from fly64_train.core.seam import LoadedModel
    from fly64_train.data.reader import DatasetInfo

RECONSTRUCTION_NPZ = "reconstruction.npz"
RECONSTRUCTION_PNG = "reconstruction.png"
RECONSTRUCTION_H5 = "reconstruction.h5"

__all__ = [
    "FRC_UNIT", "RECONSTRUCTION_H5", "RECONSTRUCTION_NPZ", "RECONSTRUCTION_PNG", "Evaluation", "EvaluationConfig",
    "Scorecard", "ScoringConfig", "bounding_box", "coverage_mask", "evaluate_bundle", "evaluate_job", "flat_floor",
    "grouping_for", "n_patterns", "reconstruct", "save_product", "save_reconstruction", "score_job", "score_stitched",
]


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
    refine: RefineConfig = field(default_factory=RefineConfig)
    """Per-scan refinement ("PINN + refine", :mod:`fly64_train.evaluation.refine`): with ``refine.steps > 0``
    the job's scorecard also holds ``refine``, the scores of a copy fine-tuned on the test split's own patterns."""

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
        check_device(self.device)  # the seam's device names (fly64_train.core.device)
        self.refine.check()


def reconstruct(model: LoadedModel, test_path: str | os.PathLike | DatasetInfo,
                cfg: EvaluationConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Predict and stitch a test split: ``(stitched, weight, objectGuess, footprint peak weight)``.

    ``test_path``: the file (validated against DATA-001 before any pattern is read) or the dataset
    already opened. ``cfg.neighbor_count`` and ``cfg.grouping_seed`` must be resolved (see :func:`grouping_for`).
    """
    from fly64_train.data.reader import dataset_of
    from fly64_train.evaluation.predict import predict_patches

    if cfg.neighbor_count is None or cfg.grouping_seed is None:
        raise ValueError("reconstruct needs a resolved grouping (neighbor_count and grouping_seed)")
    data = dataset_of(test_path, model.gridsize, cfg.neighbor_count)
    predicted = predict_patches(model, data, neighbor_count=cfg.neighbor_count,
                                grouping_seed=cfg.grouping_seed, batch_size=cfg.batch_size)
    truth = data.readers["objectGuess"].read_all()
    probe = data.probe
    weight = (np.abs(probe).astype(np.float64) ** 2) * model.support().astype(np.float64)
    # The model's own stitch: on its device (a GPU scatters there), else the numpy stitch.
    image, summed = model.stitch(predicted.patches, predicted.ycoords, predicted.xcoords, truth.shape, weight)
    return image, summed, truth, float(weight.max())


def grouping_for(manifest: BundleManifest, cfg: EvaluationConfig) -> EvaluationConfig:
    """``cfg`` with the grouping resolved: as asked, else as the bundle recorded, else the study design's."""
    from fly64_data.design import get_study_design

    recorded = manifest.config
    design = get_study_design()
    neighbor = cfg.neighbor_count if cfg.neighbor_count is not None else recorded.get(
        "neighbor_count", design.neighbor_count)
    seed = cfg.grouping_seed if cfg.grouping_seed is not None else recorded.get(
        "grouping_seed", int(design.rng_seeds["grouping"]))
    return replace(cfg, neighbor_count=int(neighbor), grouping_seed=int(seed))


def evaluate_bundle(bundle_path: str | os.PathLike, test_path: str | os.PathLike,
                    cfg: EvaluationConfig | None = None, *, expected_sha256: str | None = None) -> Evaluation:
    """Load a bundle (any backend), reconstruct ``test_path`` and score it against its ``objectGuess``.

    The scorer's arrays and numbers (``.scorecard()``) of plain prediction: no timing, information score
    or refinement is computed here (:func:`score_job` records them). ``cfg`` ``None``: the defaults,
    without the information score. A ``cfg`` asking for the information score or a refinement is refused
    (ValueError naming the setting) before anything is read: the caller would not see them.
    """
    if cfg is None:
        cfg = EvaluationConfig(information=False)
    # Refused, not silently switched off: a caller asking for these would otherwise get results without them.
    asked = ["information=True"] if cfg.information else []
    asked += [f"refine.steps={cfg.refine.steps}"] if cfg.refine.steps else []
    if asked:
        raise ValueError(f"evaluate_bundle scores plain prediction only, but the EvaluationConfig asks for "
                         f"{' and '.join(asked)}: set information=False and refine.steps=0, or use "
                         f"score_job/evaluate_job, which compute them")
    return _evaluate(bundle_path, test_path, cfg, expected_sha256)[0]


def _evaluate(bundle_path: str | os.PathLike, test_path: str | os.PathLike, cfg: EvaluationConfig | None,
              expected_sha256: str | None) -> tuple[Evaluation, Scorecard, DatasetInfo]:
    """The evaluation's arrays, its whole scorecard and the opened test split (for the product writer).

    Each input is read once: the bundle (digest, manifest, weights) and the test split (opened and
    validated once, then handed to prediction, the information score, refinement and the product).
    """
    from fly64_train.bundle import load_contents, read_bundle
    from fly64_train.data.reader import dataset_of

    cfg = cfg or EvaluationConfig()
    cfg.check()
    # Reading checks the file's digest (when given) first, so the manifest used below is the verified one.
    contents = read_bundle(bundle_path, expected_sha256=expected_sha256)
    model = load_contents(contents, device=cfg.device)
    cfg = grouping_for(contents.manifest, cfg)
    data = dataset_of(test_path, model.gridsize, cfg.neighbor_count)
    # Timed alone (no bundle loading, no validation of the file, no scoring), as Phase F times its
    # reconstruction: Phase G compares the two per 1,000 patterns. The stitch returns numpy, so a GPU's
    # queue has drained.
    started = time.perf_counter()
    image, weight, truth, peak = reconstruct(model, data, cfg)
    wall_s = time.perf_counter() - started
    evaluation = score_stitched(image, weight, truth, peak, cfg)
    # The backend's resolved device (``auto`` became cpu or cuda:K); the TF backend names it its own way.
    scorecard = replace(evaluation.scorecard(), reconstruction=ReconstructionTime(
        wall_s, data.n, str(getattr(model, "device", cfg.device))))
    if cfg.information:
        from fly64_train.evaluation.information import model_information

        scorecard = replace(scorecard, information=model_information(
            model, data, neighbor_count=cfg.neighbor_count, grouping_seed=cfg.grouping_seed,
            batch_size=cfg.batch_size))
    if cfg.refine.steps:
        from fly64_train.evaluation.refine import refined_scorecard

        scorecard = replace(scorecard, refine=refined_scorecard(model, data, cfg, contents.manifest.config))
    scorecard.check()
    return evaluation, scorecard, data


def n_patterns(test_path: str | os.PathLike | DatasetInfo) -> int:
    """Scan positions of a DATA-001 file, read from the array header (nothing loaded), or of an opened dataset."""
    from fly64_train.data.reader import DatasetInfo, npz_members

    if isinstance(test_path, DatasetInfo):
        return test_path.n
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


#: The members of ``reconstruction.npz`` a report draws: real 2-D images of the scored region, one shape.
IMAGE_MEMBERS = ("amplitude", "phase", "amplitude_true", "phase_true")
#: A region image larger than this is not one an evaluation wrote (a 4096^2 float32 image is 64 MiB).
MAX_IMAGE_BYTES = 1 << 30


def load_reconstruction(path: str | os.PathLike, keys: tuple[str, ...] = IMAGE_MEMBERS) -> dict[str, np.ndarray]:
    """The region images of a ``reconstruction.npz``, each checked from its header before it is read.

    Every key must be present, a 2-D real floating array, and all of one shape: what
    :func:`save_reconstruction` writes. No pickle is ever loaded (object dtypes are refused from the header).

    Raises
    ------
    fly64_data.npz_reader.NpzError
        One line naming the file and the key: missing, 0-d, 3-D, complex, of another shape than the
        first, or unreadable.
    """
    from fly64_data.npz_reader import NpzError, npz_headers, read_npz

    path = Path(path)
    headers = npz_headers(path)
    shape = None
    for key in keys:
        header = headers.get(key)
        if header is None:
            raise NpzError(f"{path}: missing key {key!r} (has: {', '.join(headers) or 'none'})")
        if len(header.shape) != 2 or header.dtype.kind != "f":
            raise NpzError(f"{path}: key {key!r} is a {len(header.shape)}-D {header.dtype} array, "
                           "a 2-D real float image is needed")
        if min(header.shape) < 1 or (shape is not None and header.shape != shape):
            raise NpzError(f"{path}: key {key!r} has shape {header.shape}, "
                           f"{'an empty image' if shape is None else f'the other images {shape}'}")
        shape = header.shape
    return read_npz(path, keys, max_bytes=MAX_IMAGE_BYTES)


def score_job(bundle_path: str | os.PathLike, test_path: str | os.PathLike, job_dir: str | os.PathLike,
              cfg: EvaluationConfig | None = None, title: str | None = None,
              expected_sha256: str | None = None, losses: list[float] | tuple[float, ...] = ()) -> Scorecard:
    """Evaluate a training job's bundle on its test split; write ``reconstruction.{npz,png,h5}`` in ``job_dir``.

    ``expected_sha256`` (the digest the training manifest recorded) refuses a bundle whose bytes differ.
    ``losses`` (training loss per epoch, may be empty) go into the product file.

    Returns
    -------
    Scorecard
        The job's scores, timing, information score and refinement, typed; the manifest writer
        serialises it (:meth:`Scorecard.to_json`).
    """
    from fly64_train.evaluation.figures import plot_reconstruction

    job_dir = Path(job_dir)
    evaluation, scorecard, data = _evaluate(bundle_path, test_path, cfg, expected_sha256)
    save_reconstruction(evaluation, job_dir / RECONSTRUCTION_NPZ)
    plot_reconstruction(evaluation, job_dir / RECONSTRUCTION_PNG, title=title or str(job_dir))
    save_product(evaluation, data, job_dir / RECONSTRUCTION_H5, name=title or str(job_dir), losses=losses)
    return scorecard


def evaluate_job(bundle_path: str | os.PathLike, test_path: str | os.PathLike, job_dir: str | os.PathLike,
                 cfg: EvaluationConfig | None = None, title: str | None = None,
                 expected_sha256: str | None = None, losses: list[float] | tuple[float, ...] = ()) -> dict[str, Any]:
    """:func:`score_job`, serialised: the manifest's ``metrics`` object (see :meth:`Scorecard.to_json`).

    For a caller that writes the metrics straight into a manifest (``fly64-train evaluate``); code
    that reads the scores takes :func:`score_job`'s typed :class:`Scorecard`.
    """
    return score_job(bundle_path, test_path, job_dir, cfg, title, expected_sha256, losses).to_json()
