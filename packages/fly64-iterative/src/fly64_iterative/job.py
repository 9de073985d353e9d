"""Reconstruct one job's test split with pty-chi and score it exactly as Phase E scores the PINN.

``run_job(spec) -> JobRecord``: reads the split through Phase E's reader, runs
:func:`fly64_iterative.engine.reconstruct` on all counts (scored by Phase E's
scorer, flat floor included) and on half A of the information score's photon
split (scored on half B), and writes ``reconstruction.h5`` (Phase E's ptychodus
product writer) and ``reconstruction.png`` into the job folder. Never raises for
the job's own failure: a failed job comes back with a one-line error and the
traceback in its ``iterative.log``.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fly64_iterative.convention import counts_of
from fly64_iterative.engine import EngineConfig, Reconstruction, reconstruct
from fly64_iterative.pinn_start import PinnStart, StartObjects, start_objects, start_options
from fly64_manifest import ensure_dir, open_append, sha256_file
from fly64_train.studies.job_log import job_logger
from fly64_train.studies.matrix import Job

if TYPE_CHECKING:
    from fly64_train.evaluation.metrics import InformationScore
    from fly64_train.evaluation.scorecard import Scorecard

RECONSTRUCTION_H5 = "reconstruction.h5"
RECONSTRUCTION_PNG = "reconstruction.png"
LOG_NAME = "iterative.log"


@dataclass(frozen=True)
class JobSpec:
    """One planned Phase F job."""

    job: Job
    """The Phase E cell whose test split is reconstructed (its key pairs the two methods)."""
    test_path: Path
    """The test split (checked against its producer's manifest before the run starts)."""
    job_dir: Path
    """``<artifact root>/<job.job_dir>``."""
    artifact_root: Path
    """The Phase F root: the job folder must resolve inside it (no link on the way, nothing outside)."""
    engine: EngineConfig
    """How pty-chi reconstructs."""
    ms_ssim_sigma: float = 1.0
    """The design's MS-SSIM sigma (Phase E's scorer setting)."""
    information: bool = True
    """Also reconstruct from half A of the photons and record the information score."""
    start: PinnStart | None = None
    """Start both fits from Phase E's PINN prediction of the same photons ("PINN + LSQML"); ``None``: flat."""

    def check(self) -> None:
        """Raise ValueError when the parts disagree."""
        self.engine.check()
        if self.start is not None:
            self.start.check()
        if not self.ms_ssim_sigma > 0:
            raise ValueError(f"ms_ssim_sigma must be positive, got {self.ms_ssim_sigma}")


@dataclass
class JobRecord:
    """What a job did; :meth:`as_json` is its manifest entry (schema ``iterative_manifest`` #/$defs/job)."""

    status: str
    error: str | None = None
    wall_time_s: float | None = None
    duration_s: float = 0.0
    n_patterns: int | None = None
    device: str = "cpu"
    device_name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    metrics: Scorecard | None = None
    """The job's scores, typed until :func:`fly64_iterative.runner.entry` writes them (``None``: not scored)."""
    artifacts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def artifact(job_dir: Path, name: str) -> dict[str, Any]:
    """``{path, sha256, size_bytes}`` of a file the job wrote (path relative to the job dir)."""
    digest, size = sha256_file(job_dir / name)
    return {"path": name, "sha256": digest, "size_bytes": size}


def run_job(spec: JobSpec) -> JobRecord:
    """Reconstruct, score and write one job; a failure is returned as a ``failed`` record."""
    started = time.monotonic()
    try:
        ensure_dir(spec.job_dir, spec.artifact_root, what="job folder")
        log_cm = _job_log(spec.job_dir / LOG_NAME)
        log = log_cm.__enter__()
    except (OSError, ValueError) as exc:  # UnsafePathError is a ValueError; no folder, so no log either
        return _failed(exc, spec, started)
    try:
        log.info("job %s: test split %s, engine %r", spec.job.label(), spec.test_path, spec.engine)
        try:
            spec.check()
            record = _reconstruct_and_score(spec, log)
        except Exception as exc:  # noqa: BLE001 - one job's failure must not stop the others
            log.error("FAILED:\n%s", traceback.format_exc())
            record = _failed(exc, spec, started)
        record.duration_s = round(time.monotonic() - started, 3)
        log.info("result: %s %s", record.status, record.error or "")
    finally:
        log_cm.__exit__(None, None, None)
    return record


def _failed(exc: BaseException, spec: JobSpec, started: float) -> JobRecord:
    return JobRecord(status="failed", error=" ".join(f"{type(exc).__name__}: {exc}".split()),
                     device=spec.engine.device, duration_s=round(time.monotonic() - started, 3))


def _reconstruct_and_score(spec: JobSpec, log: logging.Logger) -> JobRecord:
    from fly64_train.data.reader import open_dataset
    from fly64_train.evaluation.figures import plot_reconstruction
    from fly64_train.evaluation.product import save_product
    from fly64_train.evaluation.scorecard import ReconstructionTime
    from fly64_train.evaluation.scoring import ScoringConfig, score_stitched

    info = open_dataset(spec.test_path)  # Phase E's reader: DATA-001 checked chunk by chunk
    s = info.intensity_scale
    truth = info.readers["objectGuess"].read_all()
    counts = counts_of(info.diffraction.read_all(), s)
    starts = None
    if spec.start is not None:
        starts = start_objects(spec.start, info, half_a=spec.information)
        log.info("PINN start from %s (sha256 %s): predicted in %.3f s", spec.start.bundle, spec.start.sha256,
                 starts.predict_s)
    recon = reconstruct(counts, info.probe, info.ycoords, info.xcoords, truth.shape, s, spec.engine,
                        start=None if starts is None else starts.full)
    # The method's time is the whole of it: with a PINN start, the prediction as well as the fit.
    wall_s = recon.wall_s + (0.0 if starts is None else starts.predict_s)
    log.info("reconstructed %d patterns in %.3f s on %s", info.n, wall_s, recon.device)
    weight, summed = coverage_weight(info.probe, info.ycoords, info.xcoords, truth.shape)
    evaluation = score_stitched(recon.object, summed, truth, float(weight.max()),
                                ScoringConfig(ms_ssim_sigma=spec.ms_ssim_sigma))
    metrics = replace(evaluation.scorecard(), reconstruction=ReconstructionTime(wall_s, info.n, recon.device),
                      information=_information(spec, info, truth, summed, starts) if spec.information else None)
    metrics.check()
    options = recon.options
    if starts is not None:
        options = {**options, **start_options(spec.start), "pinn_predict_s": round(starts.predict_s, 4),
                   "fit_s": round(recon.wall_s, 4)}
    start_name = "" if starts is None else "PINN + "
    title = f"{spec.job.label()} (test split), {start_name}pty-chi {spec.engine.engine}"
    save_product(evaluation, spec.test_path, spec.job_dir / RECONSTRUCTION_H5, name=title)
    plot_reconstruction(evaluation, spec.job_dir / RECONSTRUCTION_PNG, title=title)
    return JobRecord(status="success", wall_time_s=round(wall_s, 4), n_patterns=info.n,
                     device=recon.device, device_name=recon.device_name, options=options, metrics=metrics,
                     artifacts=[artifact(spec.job_dir, RECONSTRUCTION_H5), artifact(spec.job_dir, RECONSTRUCTION_PNG)])


def coverage_weight(probe: np.ndarray, ycoords: np.ndarray, xcoords: np.ndarray,
                    shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Phase E's stitch weight ``|P|^2`` on the PINN's central support, and its sum over the scan.

    The scorer's coverage mask and region come from this sum, so both methods are
    scored on the same pixels of the same split.
    """
    from fly64_train.evaluation.stitch import stitch
    from fly64_train.training.model_config import ModelConfig

    n = probe.shape[0]
    side = int(round(n * ModelConfig().support_fraction))
    support = np.zeros((n, n))
    start = (n - side) // 2
    support[start:start + side, start:start + side] = 1.0
    weight = np.abs(probe.astype(np.complex128)) ** 2 * support
    ones = np.ones((len(ycoords), n, n), np.complex64)
    _, summed = stitch(ones, ycoords, xcoords, shape, weight)
    return weight, summed


def _information(spec: JobSpec, info: Any, truth: np.ndarray, summed: np.ndarray,
                 starts: StartObjects | None) -> InformationScore:
    """Fit half A of the photons, score on half B (the same split and score as Phase E's).

    A PINN start is the PINN's prediction from half A alone: half B reaches neither the start nor the fit.
    """
    from fly64_train.evaluation.information import unreached_as_nan
    from fly64_train.evaluation.metrics import COUNT_SPLIT_FRACTION, information_score, split_counts

    keys = info.readers["scan_index"].read_all() if "scan_index" in info.readers else None
    counts_a, counts_b = split_counts(info.diffraction.read_all(), info.intensity_scale,
                                      fraction=COUNT_SPLIT_FRACTION, keys=keys)
    half: Reconstruction = reconstruct(counts_a.astype(np.float32), info.probe, info.ycoords, info.xcoords,
                                       truth.shape, info.intensity_scale, spec.engine,
                                       photon_share=COUNT_SPLIT_FRACTION,
                                       start=None if starts is None else starts.half_a)
    # As for the PINN: pixels the scan did not reach are "not reconstructed" (NaN), not the flat start.
    recon = unreached_as_nan(half.object, summed)
    return information_score(recon, truth, counts_a, counts_b, probe=info.probe, ycoords=info.ycoords,
                             xcoords=info.xcoords, intensity_scale=info.intensity_scale,
                             fraction=COUNT_SPLIT_FRACTION)


def _job_log(path: Path) -> contextlib.AbstractContextManager[logging.Logger]:
    """A per-job logger writing to ``iterative.log`` (pty-chi's own messages included)."""
    # As Phase E's train.log: never through a link planted at the log's name.
    return job_logger(open_append(path, what="job log"), f"fly64_iterative.job.{path.parent}", ("ptychi",))
