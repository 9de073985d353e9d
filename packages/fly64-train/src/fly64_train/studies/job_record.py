"""What became of one job: the typed record the manifest writer serializes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fly64_train.evaluation.scorecard import Scorecard
from fly64_train.studies.job_context import JobContext
from fly64_train.studies.job_spec import LOG_NAME
from fly64_train.studies.matrix import Job
from fly64_train.training.result import TrainResult

#: ``JobResult.status`` values the training manifest allows for a job the runner attempted: the four
#: end states of a real run (docs/decisions.md, "Job end states"), and a dry run's plan.
STATUSES = ("success", "failed", "interrupted", "diverged", "dry_run")
#: End states that are not a usable result: each records its one-line reason in ``error``.
UNSUCCESSFUL = ("failed", "interrupted", "diverged")


@dataclass(frozen=True)
class Artifact:
    """A file of the job folder recorded with its digest, so ``fly64-manifest verify`` can check it."""

    path: str
    """Relative to the job folder."""
    sha256: str
    """sha256 of the bytes written."""
    size_bytes: int
    """Size of the file."""

    @classmethod
    def of(cls, job_dir: Path, name: str) -> Artifact:
        from fly64_manifest import sha256_file

        digest, size = sha256_file(job_dir / name)
        return cls(name, digest, size)

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size_bytes": self.size_bytes}


@dataclass(frozen=True)
class JobResult:
    """The ``result`` of a training-manifest job entry."""

    status: str
    """``success``; ``failed`` (the job's own error, or its evaluation's); ``interrupted`` (a signal, or
    ``--max-time`` before the first epoch finished: resumable, a rerun continues from the last
    checkpoint); ``diverged`` (trained to a non-finite or frozen loss, or to an all-zero object; the
    bundle is kept for inspection); or ``dry_run``."""
    duration_s: float = 0.0
    """Wall time of training, seconds (0 for a dry run)."""
    final_loss: float | None = None
    """Last epoch's training loss."""
    epochs_completed: int = 0
    """Epochs finished, resumed ones included."""
    checkpoint_path: str | None = None
    """Last-epoch checkpoint, relative to the job folder."""
    bundle_path: str | None = None
    """The bundle, relative to the job folder."""
    bundle_sha256: str | None = None
    """sha256 of the bundle's bytes."""
    bundle_size_bytes: int | None = None
    """Size of the bundle."""
    metrics: Scorecard | None = None
    """Evaluation scores on the test split, typed until the manifest writer serialises them (``None``: not
    evaluated)."""
    error: str | None = None
    """One-line reason of a failed, interrupted or diverged job."""
    attempts: int = 1
    """Times this run started the job (more than 1 after a worker died mid-job)."""
    ran_on: str | None = None
    """Where the last attempt ran (a Dask worker's address, or host and pid); progress only, not recorded."""
    n_groups: int | None = None
    """Training groups formed from the training file."""
    artifacts: tuple[Artifact, ...] = ()
    """Files the evaluation wrote (``reconstruction.h5``), hashed when written."""
    stop_reason: str | None = None
    """``"max_time"`` when ``--max-time`` cut training short of ``max_epochs`` (recorded, 1.1 optional)."""

    @classmethod
    def trained(cls, result: TrainResult, metrics: Scorecard | None, attempts: int = 1,
                ran_on: str | None = None, artifacts: tuple[Artifact, ...] = (), *, status: str = "success",
                error: str | None = None) -> JobResult:
        """A job whose training wrote a bundle: ``success``, or ``failed``/``diverged`` with the reason."""
        return cls(status=status, error=error, stop_reason=result.stop_reason, attempts=attempts, ran_on=ran_on,
                   duration_s=result.duration_s,
                   final_loss=result.final_loss,
                   epochs_completed=result.epochs_completed, checkpoint_path=result.checkpoint_path,
                   bundle_path=result.bundle_path, bundle_sha256=result.bundle_sha256,
                   bundle_size_bytes=result.bundle_size_bytes, metrics=metrics, n_groups=result.n_groups,
                   artifacts=artifacts)

    @classmethod
    def failed(cls, error: str, duration_s: float, attempts: int = 1, ran_on: str | None = None) -> JobResult:
        return cls(status="failed", duration_s=round(duration_s, 3), error=error, attempts=attempts, ran_on=ran_on)

    @classmethod
    def interrupted(cls, reason: str, duration_s: float, attempts: int = 1, ran_on: str | None = None) -> JobResult:
        """A job stopped before it produced a bundle; a rerun resumes it from its last checkpoint."""
        return cls(status="interrupted", duration_s=round(duration_s, 3), error=reason, attempts=attempts,
                   ran_on=ran_on)

    def check(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.status == "success" and (self.bundle_path is None or self.bundle_sha256 is None):
            raise ValueError("a successful job records its bundle")
        if self.status in UNSUCCESSFUL and not self.error:
            raise ValueError(f"a {self.status} job records its reason")
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")


@dataclass(frozen=True)
class JobRecord:
    """One job entry of ``training_manifest.json``."""

    job: Job
    """The matrix cell; its job folder and data paths follow from it."""
    backend: str
    """The backend that trained (or would train) the job."""
    result: JobResult
    """What happened."""
    log_path: str = LOG_NAME
    """The job's log, relative to its folder."""
    context: JobContext = JobContext()
    """What the cell was trained on (positions, measured overlap, ...)."""

    @property
    def key(self) -> tuple[float, str, int, int | None]:
        return self.job.key

    @property
    def failed(self) -> bool:
        """Whether the job ended without a usable result (failed, interrupted or diverged)."""
        return self.result.status in UNSUCCESSFUL

    def check(self) -> None:
        self.result.check()
