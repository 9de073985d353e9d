"""One planned job: what to train, from which data, into which folder (picklable, framework-free)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fly64_train.evaluation.evaluate import EvaluationConfig
from fly64_train.studies.job_context import JobContext
from fly64_train.studies.matrix import Job
from fly64_train.training.config import TrainConfig

#: The per-job log beside the checkpoints.
LOG_NAME = "train.log"


@dataclass(frozen=True)
class JobSpec:
    """Everything :func:`fly64_train.studies.execute.run_job` needs, and nothing it must look up."""

    job: Job
    """The matrix cell (dose, view, gridsize; seed for a replicate)."""
    train: TrainConfig
    """The complete training configuration: data paths, job folder, the user's settings."""
    evaluation: EvaluationConfig
    """How to score the bundle on the test split."""
    evaluate: bool = True
    """Score the bundle after training (a scoring failure leaves ``metrics`` null, not the job failed)."""
    dry_run: bool = False
    """Write the job's ``train.log`` and record it as planned; train nothing."""
    run_id: str = ""
    """The client run that submitted the job: ``attempts.json`` counts starts per run, so a later
    run of the same job starts again at attempt 1 while a retry after a lost worker counts on."""
    context: JobContext = JobContext()
    """What the cell trains on (positions, measured overlap), recorded with the job."""
    artifact_root: str | None = None
    """The study's artifact root: the job folder must lie inside it with no symbolic link on the way
    (``None``: the job folder is its own root)."""

    @property
    def job_dir(self) -> Path:
        return Path(self.train.job_dir)

    @property
    def log_path(self) -> Path:
        return self.job_dir / LOG_NAME

    def check(self) -> None:
        """Raise ValueError when the parts disagree."""
        self.train.check()
        if self.train.gridsize != self.job.gridsize:
            raise ValueError(f"{self.job.label()}: train.gridsize is {self.train.gridsize}")
        if self.job.seed is not None and self.train.seed != self.job.seed:
            raise ValueError(f"{self.job.label()}: train.seed is {self.train.seed}")
        self.context.check()
        if self.train.test_path is None:
            raise ValueError(f"{self.job.label()}: no test split")
