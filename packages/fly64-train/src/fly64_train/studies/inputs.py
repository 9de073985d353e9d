"""Check every input file of a run against what Phase C / Phase D recorded, before anything is written.

A job trains on ``dose_<d>/...`` files found by convention; this module makes sure
each is the file its producer wrote: its sha256 must equal the digest recorded in
``run_manifest.json`` (Phase C) or ``overlap_manifest.json`` (Phase D), and the dose
in its ``_metadata`` must be the job's. A file whose ``_metadata`` cannot be read
but whose digest matches is left to its job, which then fails with the data
contract's own message (the producer recorded a bad file; the other jobs still run).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from fly64_data.contract import ContractError, read_metadata
from fly64_manifest import (
    FileRecord,
    ManifestError,
    OverlapManifest,
    RunManifest,
    load_overlap_manifest,
    load_run_manifest,
)
from fly64_manifest.loaders import OVERLAP_MANIFEST, RUN_MANIFEST
from fly64_train.studies.matrix import BASELINE, Job
from fly64_train.training.digest import file_sha256

if TYPE_CHECKING:
    # A type only: importing job_spec would pull in the evaluation and its backend seam, which
    # Phase F (fly64-iterative, checking its test splits here) must not reach.
    from fly64_train.studies.job_spec import JobSpec

T = TypeVar("T")


class InputMismatchError(ValueError):
    """An input file is not the one its producer's manifest records."""


def read_manifest(loader: Callable[[Path], T], path: Path) -> T:
    """``loader(path)`` with every failure, a pathologically nested file included, as ManifestError."""
    try:
        return loader(path)
    except RecursionError:
        # json's decoder recurses per nesting level; a hostile file must not end in a traceback.
        raise ManifestError(f"{path}: JSON nested too deeply to be a fly64 manifest") from None


def read_phase_d(phase_d_root: Path, jobs: Sequence[Job],
                 views: Sequence[str] | None = None) -> OverlapManifest | None:
    """Phase D's manifest when some job (or a ``views`` filter) needs Phase D data and the file exists."""
    path = phase_d_root / OVERLAP_MANIFEST[0]
    needed = any(job.view != BASELINE for job in jobs) or any(view != BASELINE for view in views or ())
    if not needed or not path.is_file():
        return None
    return read_manifest(load_overlap_manifest, path)


def read_phase_c(phase_c_root: Path) -> RunManifest | None:
    """Phase C's manifest if the file exists (the baseline jobs' context), else ``None``."""
    path = phase_c_root / RUN_MANIFEST[0]
    return read_manifest(load_run_manifest, path) if path.is_file() else None


def verify_inputs(specs: Sequence[JobSpec], phase_c_root: Path, phase_d_root: Path,
                  recorded: RecordedInputs | None = None) -> None:
    """Raise :class:`InputMismatchError` (or ManifestError) naming the first file that does not check out.

    ``recorded``: the manifests the run already read (:func:`fly64_train.studies.runner.plan` fills it).
    """
    recorded = recorded or RecordedInputs(phase_c_root, phase_d_root)
    for spec in specs:
        recorded.check(spec.job.view, spec.job.dose, train=Path(spec.train.train_path),
                       test=Path(str(spec.train.test_path)))


class RecordedInputs:
    """Phase C's and Phase D's manifests, each read once: what ``run`` and ``evaluate`` check data files against."""

    def __init__(self, phase_c_root: Path, phase_d_root: Path, run: RunManifest | None = None,
                 overlap: OverlapManifest | None = None) -> None:
        self.phase_c_root, self.phase_d_root = Path(phase_c_root), Path(phase_d_root)
        self._run: RunManifest | None = run
        """Phase C's manifest once read (by the plan or the first baseline check)."""
        self._overlap: OverlapManifest | None = overlap
        """Phase D's manifest once read."""

    def keep(self, run: RunManifest | None, overlap: OverlapManifest | None) -> None:
        """Keep manifests read elsewhere (the plan's), so that :meth:`check` does not read them again."""
        self._run = self._run or run
        self._overlap = self._overlap or overlap

    def check(self, view: str, dose: float, train: Path | None = None, test: Path | None = None) -> None:
        """Raise :class:`InputMismatchError` (or ManifestError) unless each given split is the recorded file."""
        if view == BASELINE:
            self._run = self._run or read_manifest(load_run_manifest, self.phase_c_root / RUN_MANIFEST[0])
            record = self._run.dose(dose)
            manifest = self._run.path
        else:
            path = self.phase_d_root / OVERLAP_MANIFEST[0]
            if self._overlap is None and not path.is_file():
                raise ManifestError(f"{self.phase_d_root}: no overlap_manifest.json to check the "
                                    f"dose {dose:g} {view} data against")
            self._overlap = self._overlap or read_manifest(load_overlap_manifest, path)
            record = self._overlap.view(dose, view)
            manifest = self._overlap.path
        for file, rec in ((train, record.train), (test, record.test)):
            if file is not None:
                check_file(file, rec, manifest, dose)


def check_file(path: Path, record: FileRecord | None, manifest: Path, dose: float) -> None:
    """Raise :class:`InputMismatchError` unless ``path`` is the file ``record`` (from ``manifest``) names.

    Its sha256 must be the recorded one and its ``_metadata`` dose ``dose`` (Phase F checks its test splits
    with this too).
    """
    if record is None or record.path.resolve() != path.resolve():
        raise InputMismatchError(f"{path}: not recorded in {manifest}")
    if record.sha256 is None:
        raise InputMismatchError(f"{path}: {manifest} records no sha256 for it")
    digest = file_sha256(path)  # once per run: training records the same digest
    if digest != record.sha256:
        raise InputMismatchError(f"{path}: sha256 {digest} does not match {record.sha256} recorded in {manifest}")
    try:
        recorded_dose = read_metadata(path).get("dose")
    except ContractError:
        return
    if not isinstance(recorded_dose, (int, float)) or float(recorded_dose) != float(dose):
        raise InputMismatchError(f"{path}: its _metadata records dose {recorded_dose}, the job is dose {dose:g}")

