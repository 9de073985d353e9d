"""One object for a whole study: the three phases and which data trained which bundle."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from fly64_manifest.io import ManifestError
from fly64_manifest.loaders import (
    load_iterative_manifest,
    load_overlap_manifest,
    load_run_manifest,
    load_training_manifest,
)
from fly64_manifest.models import (
    DoseData,
    FileRecord,
    IterativeManifest,
    OverlapManifest,
    OverlapView,
    RunManifest,
    TrainingJob,
    TrainingManifest,
)
from fly64_manifest.verify import Problem, verify


@dataclass(frozen=True)
class Lineage:
    """Where a job's data came from.

    Attributes
    ----------
    job : TrainingJob
        The job, with its bundle path and hash.
    phase : str
        ``"phase_c"`` (baseline) or ``"phase_d"`` (dense/sparse views).
    train, test : FileRecord or None
        The upstream manifest's record of the file the job read (its sha256 as
        written), or ``None`` when the upstream manifest does not list that file.
    dose_data : DoseData or None
        The Phase C dose the data derives from (intensity scale, measured counts).
    overlap_view : OverlapView or None
        The Phase D view, for dense/sparse jobs.
    """

    job: TrainingJob
    phase: str
    train: FileRecord | None
    test: FileRecord | None
    dose_data: DoseData | None
    overlap_view: OverlapView | None


def _find(records: tuple[FileRecord, ...], path: Path) -> FileRecord | None:
    for rec in records:
        if os.path.normpath(rec.path) == os.path.normpath(path):
            return rec
    return None


@dataclass(frozen=True)
class Study:
    """A study root: ``phase_c/run_manifest.json``, ``phase_d/overlap_manifest.json``,
    ``phase_e/training_manifest.json`` (+ ``skip_summary.json``), ``phase_f/iterative_manifest.json``.

    Manifests are read on first use and cached on the instance; a missing phase
    raises :class:`ManifestError` only when asked for.
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).absolute())

    @cached_property
    def phase_c(self) -> RunManifest:
        return load_run_manifest(self.root / "phase_c")

    @cached_property
    def phase_d(self) -> OverlapManifest:
        return load_overlap_manifest(self.root / "phase_d")

    @cached_property
    def phase_e(self) -> TrainingManifest:
        return load_training_manifest(self.root / "phase_e")

    @cached_property
    def phase_f(self) -> IterativeManifest:
        """Phase F: the iterative (pty-chi) reconstructions of the same test splits."""
        return load_iterative_manifest(self.root / "phase_f")

    @property
    def jobs(self) -> tuple[TrainingJob, ...]:
        """Every Phase E job."""
        return self.phase_e.jobs

    def job(self, dose: float, view: str, gridsize: int | None = None) -> TrainingJob:
        """The Phase E job of ``(dose, view[, gridsize])``."""
        return self.phase_e.job(dose, view, gridsize)

    def lineage(self, job: TrainingJob) -> Lineage:
        """Link a job to the upstream records of the data it was trained and tested on."""
        dose_data = None
        try:
            dose_data = self.phase_c.dose(job.dose)
        except ManifestError:
            pass  # the dose or Phase C itself is absent; verify() reports that
        if job.data_root == "phase_c_root":
            records = self.phase_c.files() if dose_data is not None else ()
            return Lineage(job, "phase_c", _find(records, job.train_data_path),
                           _find(records, job.test_data_path), dose_data, None)
        try:
            view = self.phase_d.view(job.dose, job.view)
        except ManifestError:
            view = None
        records = tuple(view.files.values()) if view is not None else ()
        return Lineage(job, "phase_d", _find(records, job.train_data_path),
                       _find(records, job.test_data_path), dose_data, view)

    def lineages(self) -> tuple[Lineage, ...]:
        """:meth:`lineage` of every job."""
        return tuple(self.lineage(job) for job in self.jobs)

    def verify(self, *, rehash_data: bool = False) -> list[Problem]:
        """:func:`fly64_manifest.verify.verify` of this study."""
        return verify(self.root, rehash_data=rehash_data)
