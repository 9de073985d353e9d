"""The Phase E job matrix: one job per dose x view, and which data each job reads.

=========  ========  =============================================
view       gridsize  training / test data
=========  ========  =============================================
baseline   1         Phase C ``dose_<int>/patched_{train,test}.npz``
dense      2         Phase D ``dose_<int>/dense/dense_{train,test}.npz``
sparse     2         Phase D ``dose_<int>/sparse/sparse_{train,test}.npz``
=========  ========  =============================================
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fly64_data.design import StudyDesign, dose_dirname

VIEW_GRIDSIZE = {"baseline": 1, "dense": 2, "sparse": 2}


@dataclass(frozen=True)
class Job:
    """One cell of the matrix."""

    dose: float
    view: str
    gridsize: int

    @property
    def key(self) -> tuple[float, str, int]:
        return (float(self.dose), self.view, int(self.gridsize))

    @property
    def job_dir(self) -> str:
        """Relative to the artifact root."""
        return f"{dose_dirname(self.dose)}/{self.view}/gs{self.gridsize}"

    @property
    def data_root(self) -> str:
        """Which root the data paths are relative to (a training_manifest field)."""
        return "phase_c_root" if self.view == "baseline" else "phase_d_root"

    def data_paths(self) -> tuple[str, str]:
        """Train and test NPZ, relative to :attr:`data_root`."""
        base = dose_dirname(self.dose)
        if self.view == "baseline":
            return f"{base}/patched_train.npz", f"{base}/patched_test.npz"
        return f"{base}/{self.view}/{self.view}_train.npz", f"{base}/{self.view}/{self.view}_test.npz"

    def label(self) -> str:
        return f"dose {self.dose:g} {self.view} gs{self.gridsize}"


def build_matrix(design: StudyDesign) -> list[Job]:
    """Every job of the study: for each dose, baseline (gs1), dense and sparse (gs2)."""
    views = ["baseline", *design.overlap_views]
    return [Job(float(dose), view, VIEW_GRIDSIZE[view]) for dose in design.dose_list for view in views]


def filter_jobs(jobs: Iterable[Job], doses: Sequence[float] | None = None, views: Sequence[str] | None = None,
                gridsizes: Sequence[int] | None = None) -> list[Job]:
    """Jobs matching every given filter (filters are AND-combined; None means all)."""
    return [
        job for job in jobs
        if (doses is None or float(job.dose) in {float(d) for d in doses})
        and (views is None or job.view in views)
        and (gridsizes is None or job.gridsize in gridsizes)
    ]


@dataclass(frozen=True)
class Resolved:
    """A job with its data located, or the reason it is skipped."""

    job: Job
    train_path: Path | None
    test_path: Path | None
    skip_reason: str | None = None


class MissingPhaseCError(FileNotFoundError):
    """A baseline job's Phase C file is missing: an error, not a skip."""


def resolve(job: Job, phase_c_root: Path, phase_d_root: Path) -> Resolved:
    """Locate a job's data. A missing Phase D view is a skip; missing Phase C data is an error."""
    train_rel, test_rel = job.data_paths()
    if job.view == "baseline":
        for rel in (train_rel, test_rel):
            if not (phase_c_root / rel).is_file():
                raise MissingPhaseCError(f"{phase_c_root / rel}: Phase C file not found (run `make data` first)")
        return Resolved(job, phase_c_root / train_rel, phase_c_root / test_rel)
    recorded = _phase_d_skip_reason(phase_d_root, job)
    if recorded:
        return Resolved(job, None, None, f"Phase D skipped this view: {recorded}")
    missing = [rel for rel in (train_rel, test_rel) if not (phase_d_root / rel).is_file()]
    if missing:
        return Resolved(job, None, None, f"Phase D view not found: {phase_d_root / missing[0]}")
    return Resolved(job, phase_d_root / train_rel, phase_d_root / test_rel)


def _phase_d_skip_reason(phase_d_root: Path, job: Job) -> str | None:
    """The reason Phase D recorded for skipping this view, if it did."""
    manifest = phase_d_root / "overlap_manifest.json"
    if not manifest.is_file():
        return None
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    for rec in doc.get("skipped_views", []):
        if float(rec.get("dose", -1)) == float(job.dose) and rec.get("view") == job.view:
            return str(rec.get("reason") or "no reason recorded")
    return None
