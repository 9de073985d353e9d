"""Re-evaluating a study's trained jobs (``fly64-train evaluate``): score each bundle again, update the manifest.

Each successful job the filters select is checked as ``run`` checks it (its test split is the file
Phase C/D recorded, its folder is inside the artifact root, its bundle the one the manifest recorded),
reconstructed and scored again (:func:`fly64_train.evaluation.evaluate.evaluate_job`); the new metrics
and ``reconstruction.h5`` replace the recorded ones in one manifest write under the runner's lock. A job
that cannot be evaluated is reported and keeps its recorded metrics; the others go on.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fly64_train.evaluation.refine import RefineConfig


class NothingToEvaluate(ValueError):
    """No successful job of the manifest matches the filters (nothing was evaluated or written)."""


@dataclass(frozen=True)
class ReevaluationRequest:
    """Which jobs of which study to re-evaluate, and how."""

    artifact_root: Path
    """The Phase E folder holding ``training_manifest.json``."""
    doses: tuple[float, ...] | None = None
    """Only jobs at these doses; ``None``: every dose."""
    views: tuple[str, ...] | None = None
    """Only jobs of these views; ``None``: every view."""
    batch_size: int = 32
    """Groups per forward pass."""
    device: str = "auto"
    """Where the model predicts and stitches (:func:`fly64_train.core.device.check_device` names)."""
    refine: RefineConfig = field(default_factory=RefineConfig)
    """"PINN + refine" as well when ``refine.steps`` > 0 (recorded under ``metrics.refine``)."""

    def check(self) -> None:
        """Refuse settings no evaluation can use, naming the field (the jobs are not read yet)."""
        from fly64_train.core.device import check_device

        if self.doses is not None and not all(math.isfinite(d) and d > 0 for d in self.doses):
            raise ValueError(f"doses must be positive finite numbers, got {self.doses!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        check_device(self.device)
        self.refine.check()

    def selects(self, dose: float, view: str) -> bool:
        """Whether a job at ``dose`` of ``view`` passes the filters."""
        return (self.doses is None or float(dose) in set(self.doses)) and (self.views is None or view in self.views)


@dataclass
class ReevaluationResult:
    """What a re-evaluation did: how many jobs it evaluated, which failed, where it recorded them."""

    jobs: int
    """Jobs the filters selected."""
    evaluated: int = 0
    """Jobs evaluated and recorded."""
    failed: list[str] = field(default_factory=list)
    """One line per job that could not be evaluated, naming it and why (its metrics are unchanged)."""
    manifest_path: Path | None = None
    """The updated ``training_manifest.json``; ``None`` when no job was evaluated (nothing written)."""

    def failure(self) -> str | None:
        """One line naming every failed job, or ``None`` when all were evaluated."""
        if not self.failed:
            return None
        return self.failed[0] if self.jobs == 1 else (
            f"{len(self.failed)} of {self.jobs} job(s) could not be evaluated: {'; '.join(self.failed)}")

    def summary(self) -> str | None:
        """The manifest line (``manifest: PATH (N job(s) evaluated, K failed)``), or ``None`` without a write."""
        if self.manifest_path is None:
            return None
        failed = f", {len(self.failed)} failed" if self.failed else ""
        return f"manifest: {self.manifest_path} ({self.evaluated} job(s) evaluated{failed})"


def reevaluate(request: ReevaluationRequest, out: IO[str] | None = None) -> ReevaluationResult:
    """Re-evaluate the jobs ``request`` selects; one progress line per job on ``out`` (default stdout).

    Raises
    ------
    fly64_manifest.ManifestError
        The artifact root holds no readable training manifest (checked before any framework is imported).
    NothingToEvaluate
        No successful job matches the filters.
    """
    from fly64_manifest import inside_root, load_training_manifest

    out = out or sys.stdout
    request.check()
    manifest = load_training_manifest(request.artifact_root)
    # Only now the evaluation: a wrong root is answered without importing it.
    from fly64_data.design import get_study_design
    from fly64_train.evaluation.evaluate import RECONSTRUCTION_H5, EvaluationConfig, evaluate_job
    from fly64_train.studies.inputs import RecordedInputs
    from fly64_train.studies.job_record import Artifact
    from fly64_train.studies.manifest_writer import update_job_metrics

    jobs = [j for j in manifest.jobs_with_status("success") if request.selects(j.dose, j.view)]
    if not jobs:
        raise NothingToEvaluate(f"{manifest.path}: no successful job matches the filters")
    config = EvaluationConfig(ms_ssim_sigma=float(get_study_design().metrics_config["ms_ssim_sigma"]),
                              batch_size=request.batch_size, device=request.device, refine=request.refine)
    result = ReevaluationResult(jobs=len(jobs))
    updates: dict[Any, dict[str, Any]] = {}
    artifacts: dict[Any, list[Artifact]] = {}
    recorded = RecordedInputs(manifest.phase_c_root, manifest.phase_d_root)
    for job in jobs:
        where = f"dose {job.dose:g} {job.view} gs{job.gridsize}"
        try:
            # As run does: the test split must be the file Phase C/D recorded (sha256 and dose), and
            # the loader refuses a bundle whose bytes are not the ones the manifest recorded.
            recorded.check(job.view, job.dose, test=job.test_data_path)
            inside_root(job.job_dir, manifest.root, what="job folder")  # its products are written there
            metrics = evaluate_job(job.bundle_path, job.test_data_path, job.job_dir, config,
                                   title=f"{where} (test split)", expected_sha256=job.bundle_sha256)
        except Exception as exc:  # noqa: BLE001 - one bad job or artifact must not stop the others
            # Its recorded metrics stay as they were; the line names the job and the file.
            result.failed.append(f"{where}: {_reason(exc)}")
            print(f"{result.failed[-1].replace(': ', ': FAILED: ', 1)}", file=out)
            continue
        updates[job.key] = metrics
        artifacts[job.key] = [Artifact.of(job.job_dir, RECONSTRUCTION_H5)]
        print(_scores_line(where, metrics, job.job_dir), file=out)
        if "refine" in metrics:
            print(_refine_line(where, metrics["refine"], request.refine.steps), file=out)
    if updates:
        result.manifest_path = update_job_metrics(manifest.root, updates, artifacts)
        result.evaluated = len(updates)
    return result


def _reason(exc: Exception) -> str:
    """One line: the message of an expected error (bad bundle, data or file), else the exception's type too."""
    from fly64_data.contract import ContractError
    from fly64_train.bundle import BundleError

    if isinstance(exc, FileNotFoundError):
        reason = f"{exc.filename}: file not found"
    elif isinstance(exc, BundleError | ContractError | ValueError | OSError):
        reason = str(exc)
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return " ".join(reason.split())


def _scores_line(where: str, metrics: dict[str, Any], job_dir: Path) -> str:
    amp, ph = metrics["amplitude"], metrics["phase"]
    return (f"{where}: amplitude SSIM {amp['ssim']:.3f} MS-SSIM {amp['ms_ssim']:.3f}; "
            f"phase SSIM {ph['ssim']:.3f} MS-SSIM {ph['ms_ssim']:.3f} -> {job_dir}")


def _refine_line(where: str, refined: dict[str, Any], steps: int) -> str:
    return (f"{where}: + refine ({steps} steps, {refined['reconstruction']['refine_s']:.1f} s): "
            f"amplitude SSIM {refined['amplitude']['ssim']:.3f}; phase SSIM {refined['phase']['ssim']:.3f}")
