"""Frozen, typed views of the study's manifests.

Every path here is absolute and already checked to lie inside the root that owns
it. JSON objects are exposed as read-only mappings and arrays as tuples, so code
holding a manifest cannot change what it believes the study recorded. ``raw`` keeps
the whole validated document, including fields newer minor versions add.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from fly64_manifest.backend_names import backend_name
from fly64_manifest.io import ManifestError, read_json
from fly64_manifest.schema import KINDS, read_checked
from fly64_manifest.scores import Scores, timing_of

#: The three views of the study, in report order.
VIEWS: tuple[str, ...] = ("baseline", "dense", "sparse")


def freeze(value: Any) -> Any:
    """Read-only deep copy of a JSON value: dicts -> ``MappingProxyType``, lists -> tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain ``dict``/``list`` copy of a frozen JSON value (for ``json.dumps``)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


def load_overlap_metrics(path: str | os.PathLike) -> Mapping[str, Any]:
    """A ``<view>_metrics.json``, validated against ``overlap_metrics`` when that schema exists.

    Here rather than among the loaders because :meth:`OverlapManifest.metrics` reads it: the
    loaders build these models, so the models must not reach back up into them.
    """
    path = Path(path)
    doc = read_checked(path, "overlap_metrics") if "overlap_metrics" in KINDS else read_json(path)
    return freeze(doc)


def same_dose(a: float, b: float) -> bool:
    """Doses are recorded as JSON numbers; compare 1000 and 1000.0 as equal."""
    return float(a) == float(b)


@dataclass(frozen=True)
class Producer:
    """Package that wrote a document."""

    package: str
    version: str


@dataclass(frozen=True)
class FileRecord:
    """A data file recorded by Phase C or D, with the hash taken when it was written.

    Attributes
    ----------
    path : Path
        Absolute path.
    recorded : str
        The path as written in the manifest.
    sha256, size_bytes, n_positions
        As recorded (``None`` where the manifest does not record them).
    """

    path: Path
    recorded: str
    sha256: str | None
    size_bytes: int | None
    n_positions: int | None


@dataclass(frozen=True)
class SkippedView:
    """A (dose, view) that has no data or job, and why. Phase D records no gridsize (``None``)."""

    dose: float
    view: str
    gridsize: int | None
    reason: str

    @property
    def key(self) -> tuple[float, str, int | None]:
        return (float(self.dose), self.view, self.gridsize)


# --------------------------------------------------------------------------- Phase C


@dataclass(frozen=True)
class DoseData:
    """One dose of the Phase C sweep."""

    dose: float
    directory: Path
    measured_mean_counts: float
    intensity_scale: float
    noise_seed: int
    files: Mapping[str, FileRecord]

    @property
    def train(self) -> FileRecord:
        return self.files["train"]

    @property
    def test(self) -> FileRecord:
        return self.files["test"]


@dataclass(frozen=True)
class RunManifest:
    """Phase C ``run_manifest.json``."""

    path: Path
    root: Path
    schema_version: str
    created: str
    producer: Producer
    doses: tuple[DoseData, ...]
    raw: Mapping[str, Any] = field(repr=False)

    def dose(self, dose: float) -> DoseData:
        """The record of ``dose``; :class:`ManifestError` if the sweep has none."""
        for entry in self.doses:
            if same_dose(entry.dose, dose):
                return entry
        raise ManifestError(f"{self.path}: no dose {dose:g} (have {[d.dose for d in self.doses]})")

    def files(self) -> tuple[FileRecord, ...]:
        """Every recorded data file."""
        return tuple(rec for entry in self.doses for rec in entry.files.values())


# --------------------------------------------------------------------------- Phase D


@dataclass(frozen=True)
class OverlapView:
    """One written (dose, view) of Phase D: its data files and measured-overlap metrics file.

    ``files`` maps a split name (``train``/``test``) to its record; ``metrics_file``
    is the record of ``<view>_metrics.json``, read with :meth:`OverlapManifest.metrics`.
    ``raw`` holds the whole entry (counts, measured_overlap, sources, ...).

    ``spacing_basis`` is ``patch`` (S = (1 - f) N) or ``probe`` (S = (1 - f) D); a 1.0
    manifest does not record it and means ``patch``; it is None for ``baseline_matched``,
    which follows no spacing rule. ``matched_to`` names the view an equal-positions
    control was thinned to the size of (None for an ordinary view) and
    ``matched_from`` the view it was thinned from (``baseline``: the Phase C positions).
    """

    dose: float
    view: str
    files: Mapping[str, FileRecord]
    metrics_file: FileRecord | None
    raw: Mapping[str, Any] = field(repr=False)
    spacing_basis: str | None = "patch"
    matched_to: str | None = None
    matched_from: str | None = None

    @property
    def metrics_path(self) -> Path | None:
        return None if self.metrics_file is None else self.metrics_file.path

    @property
    def train(self) -> FileRecord | None:
        return self.files.get("train")

    @property
    def test(self) -> FileRecord | None:
        return self.files.get("test")


@dataclass(frozen=True)
class OverlapManifest:
    """Phase D ``overlap_manifest.json``: the views written and the views skipped."""

    path: Path
    root: Path
    schema_version: str | None
    views: tuple[OverlapView, ...]
    skipped_views: tuple[SkippedView, ...]
    raw: Mapping[str, Any] = field(repr=False)

    def view(self, dose: float, view: str) -> OverlapView:
        """The written view for ``(dose, view)``; :class:`ManifestError` if absent or skipped."""
        for entry in self.views:
            if entry.view == view and same_dose(entry.dose, dose):
                return entry
        for skip in self.skipped_views:
            if skip.view == view and same_dose(skip.dose, dose):
                raise ManifestError(f"{self.path}: view {view} at dose {dose:g} was skipped: {skip.reason}")
        raise ManifestError(f"{self.path}: no view {view} at dose {dose:g}")

    def files(self) -> tuple[FileRecord, ...]:
        """Every recorded file: data files and metrics files."""
        return tuple(
            rec for entry in self.views
            for rec in (*entry.files.values(), *([entry.metrics_file] if entry.metrics_file else []))
        )

    def metrics(self, dose: float, view: str) -> Mapping[str, Any]:
        """The validated ``<view>_metrics.json`` of ``(dose, view)``, read-only."""
        entry = self.view(dose, view)
        if entry.metrics_path is None:
            raise ManifestError(f"{self.path}: view {view} at dose {dose:g} records no metrics file")
        return load_overlap_metrics(entry.metrics_path)


# --------------------------------------------------------------------------- jobs (Phase E and F)


def _metric(metrics: Mapping[str, Any] | None, component: str, name: str) -> float | None:
    """``metrics[component][name]`` or ``None`` when a job has no such score."""
    if metrics is None:
        return None
    value = metrics.get(component, {})
    return value.get(name) if isinstance(value, Mapping) else None


_Job = TypeVar("_Job", "TrainingJob", "IterativeJob")


def _one_job(path: Path, jobs: tuple[_Job, ...], skipped_views: tuple[SkippedView, ...], dose: float, view: str,
             gridsize: int | None, seed: int | None, narrow_by: str) -> _Job:
    """The one job of ``(dose, view)`` that matches ``gridsize``/``seed`` where given.

    ``narrow_by`` names what a caller passes to tell several matches apart (the message says so).
    """
    found = [
        j for j in jobs
        if j.view == view and same_dose(j.dose, dose) and (gridsize is None or j.gridsize == gridsize)
        and (seed is None or j.seed == seed)
    ]
    if len(found) == 1:
        return found[0]
    what = (f"{view} at dose {dose:g}" + (f" gs{gridsize}" if gridsize is not None else "")
            + (f" seed {seed}" if seed is not None else ""))
    if found:
        raise ManifestError(f"{path}: several jobs for {what}; pass {narrow_by}")
    for skip in skipped_views:
        if skip.view == view and same_dose(skip.dose, dose):
            raise ManifestError(f"{path}: {what} was skipped: {skip.reason}")
    raise ManifestError(f"{path}: no job for {what}")


# --------------------------------------------------------------------------- Phase E


@dataclass(frozen=True)
class ArtifactRecord:
    """A file a job's evaluation wrote, as recorded: absolute path, the recorded path, sha256, size."""

    path: Path
    recorded: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class TrainingJob:
    """One trained (or attempted) model: a (dose, view, gridsize) of Phase E.

    Attributes
    ----------
    dose, view, gridsize
        The job key.
    status : str
        ``success``, ``failed``, ``interrupted`` (resumable), ``diverged``, ``dry_run`` or ``skipped``
        (docs/decisions.md, "Job end states").
    job_dir : Path
        Absolute ``<artifact root>/dose_<int>/<view>/gs<g>``.
    bundle_path : Path or None
        Absolute path of ``wts.h5.zip``; with ``bundle_sha256`` and
        ``bundle_size_bytes`` as recorded when it was written.
    train_data_path, test_data_path : Path
        Absolute paths of the data the model was trained and evaluated on.
    metrics : Mapping or None
        Evaluation scores, e.g. ``metrics["phase"]["ssim"]``; see :meth:`metric`.
    attempts : int or None
        Times the run started the job (above 1 after a lost worker); ``None`` in files that predate it.
    """

    dose: float
    view: str
    gridsize: int
    status: str
    job_dir: Path
    data_root: str
    train_data_path: Path
    test_data_path: Path
    log_path: Path
    checkpoint_path: Path | None
    bundle_path: Path | None
    bundle_sha256: str | None
    bundle_size_bytes: int | None
    final_loss: float | None
    epochs_completed: int
    metrics: Mapping[str, Any] | None
    error: str | None
    duration_s: float
    raw: Mapping[str, Any] = field(repr=False)
    attempts: int | None = None
    artifacts: tuple[ArtifactRecord, ...] = ()
    """Files the evaluation wrote (``reconstruction.h5``), paths checked, with their recorded sha256 (1.1)."""

    @property
    def seed(self) -> int | None:
        """The training seed of a replicate (schema 1.1 ``seed``); ``None`` for a one-seed job."""
        value = self.raw.get("seed")
        return value if isinstance(value, int) else None

    @property
    def key(self) -> tuple[float, str, int, int | None]:
        return (float(self.dose), self.view, self.gridsize, self.seed)

    @property
    def context(self) -> Mapping[str, Any]:
        """What the cell was trained on (schema 1.1 ``context``: positions, overlap, ...); empty before 1.1."""
        value = self.raw.get("context")
        return value if isinstance(value, Mapping) else MappingProxyType({})

    @property
    def succeeded(self) -> bool:
        return self.status == "success"

    @property
    def backend(self) -> str | None:
        """The backend that trained the job (``torch``/``tensorflow``, the old ``pytorch`` read as ``torch``);
        ``None`` in files that predate it."""
        value = self.raw.get("backend")
        return backend_name(value) if isinstance(value, str) else None

    @property
    def paths(self) -> Mapping[str, Path | None]:
        """Every path of the job by name (absolute; ``None`` where not recorded)."""
        return MappingProxyType({
            "job_dir": self.job_dir,
            "train_data": self.train_data_path,
            "test_data": self.test_data_path,
            "log": self.log_path,
            "checkpoint": self.checkpoint_path,
            "bundle": self.bundle_path,
        })

    @property
    def scores(self) -> Scores | None:
        """The evaluation, typed (scores, flat floor, region, alignment, reconstruction time); ``None`` if none."""
        return Scores.from_metrics(self.metrics)

    @property
    def seconds_per_1000_patterns(self) -> float | None:
        """Reconstruction (predict + stitch) wall time per 1,000 test patterns, where the evaluation recorded it."""
        scores = self.scores
        timing = None if scores is None else scores.reconstruction
        return None if timing is None else timing.seconds_per_1000_patterns

    def artifact(self, recorded: str) -> ArtifactRecord | None:
        """The artifact recorded as ``recorded`` (e.g. ``"reconstruction.h5"``), or ``None``."""
        return next((a for a in self.artifacts if a.recorded == recorded), None)

    def metric(self, component: str, name: str) -> float | None:
        """``metrics[component][name]`` or ``None`` when the job has no such score."""
        return _metric(self.metrics, component, name)


@dataclass(frozen=True)
class SkipSummary:
    """Phase E ``skip_summary.json``."""

    path: Path
    schema_version: str
    timestamp: str
    skipped_views: tuple[SkippedView, ...]
    skipped_count: int


@dataclass(frozen=True)
class TrainingManifest:
    """Phase E ``training_manifest.json``.

    ``root`` is the artifact root: the folder holding the file, whatever the
    recorded ``artifact_root`` says (a study can be moved as a whole).
    """

    path: Path
    root: Path
    schema_version: str
    timestamp: str
    producer: Producer
    phase_c_root: Path
    phase_d_root: Path
    artifact_root: Path
    filters: Mapping[str, tuple | None]
    backend: str
    dry_run: bool
    jobs: tuple[TrainingJob, ...]
    skipped_views: tuple[SkippedView, ...]
    skipped_count: int
    skip_summary_path: Path
    raw: Mapping[str, Any] = field(repr=False)

    def job(self, dose: float, view: str, gridsize: int | None = None) -> TrainingJob:
        """The job of ``(dose, view)`` (and ``gridsize`` when a view was trained at several).

        Raises
        ------
        ManifestError
            No such job (saying so if the view was skipped), or several gridsizes match.
        """
        return _one_job(self.path, self.jobs, self.skipped_views, dose, view, gridsize, None, "gridsize")

    def jobs_with_status(self, status: str) -> tuple[TrainingJob, ...]:
        """Jobs whose status is ``status`` (``success``, ``failed``, ``interrupted``, ``diverged``, ``dry_run``,
        ``skipped``)."""
        return tuple(j for j in self.jobs if j.status == status)

    @property
    def doses(self) -> tuple[float, ...]:
        """The distinct doses with a job or a skip, ascending."""
        return tuple(sorted({float(j.dose) for j in self.jobs} | {float(s.dose) for s in self.skipped_views}))


# --------------------------------------------------------------------------- Phase F


@dataclass(frozen=True)
class IterativeJob:
    """One iterative reconstruction (pty-chi) of a Phase E job's test split: a (dose, view, gridsize, seed).

    Attributes
    ----------
    dose, view, gridsize, seed
        The key of the Phase E job whose test split this reconstructs (``seed`` ``None``
        for a one-seed run), so ``manifest.job(...)`` pairs it with the PINN job.
    status : str
        ``success``, ``failed`` or ``skipped``; ``error`` is the one-line reason of a failure.
    job_dir, test_data_path : Path
        Absolute job folder and the test split reconstructed.
    engine, engine_options, epochs, batch_size, noise_model, device
        How it was reconstructed (``engine`` ``lsqml``/``epie``/``dm``; ``device`` resolved,
        e.g. ``cpu`` or ``cuda:0``).
    wall_time_s : float or None
        Wall time of the reconstruction alone (not reading, scoring or writing).
    n_patterns : int or None
        Patterns reconstructed; with ``wall_time_s`` gives the time per pattern.
    reconstruction_path : Path or None
        The ptychodus product ``reconstruction.h5``, with its recorded sha256 and size.
    metrics : Mapping or None
        The same shape and keys as :attr:`TrainingJob.metrics` (same scorer); see :meth:`metric`.
    artifacts : tuple of ArtifactRecord
        Every file the job recorded, with its sha256.
    """

    dose: float
    view: str
    gridsize: int
    seed: int | None
    status: str
    error: str | None
    job_dir: Path
    data_root: str
    test_data_path: Path
    engine: str
    engine_options: Mapping[str, Any]
    epochs: int
    batch_size: int
    noise_model: str
    device: str
    wall_time_s: float | None
    duration_s: float
    n_patterns: int | None
    reconstruction_path: Path | None
    reconstruction_sha256: str | None
    reconstruction_size_bytes: int | None
    artifacts: tuple[ArtifactRecord, ...]
    metrics: Mapping[str, Any] | None
    raw: Mapping[str, Any] = field(repr=False)

    @property
    def key(self) -> tuple[float, str, int, int | None]:
        return (float(self.dose), self.view, self.gridsize, self.seed)

    @property
    def succeeded(self) -> bool:
        return self.status == "success"

    @property
    def seconds_per_1000_patterns(self) -> float | None:
        """Reconstruction wall time per 1,000 patterns (``None`` without a time or patterns)."""
        if self.wall_time_s is None or not self.n_patterns:
            return None
        return self.wall_time_s / self.n_patterns * 1000.0

    @property
    def scores(self) -> Scores | None:
        """The evaluation, typed as a Phase E job's; its ``reconstruction`` timing is this job's wall time."""
        name = self.raw.get("device_name")
        return Scores.from_metrics(self.metrics, timing=timing_of(self.wall_time_s, self.n_patterns, self.device,
                                                                  name))

    def metric(self, component: str, name: str) -> float | None:
        """``metrics[component][name]`` or ``None`` when the job has no such score."""
        return _metric(self.metrics, component, name)


@dataclass(frozen=True)
class IterativeManifest:
    """Phase F ``iterative_manifest.json``.

    ``root`` is the artifact root: the folder holding the file (a study can be moved as a whole).
    """

    path: Path
    root: Path
    schema_version: str
    created: str
    producer: Producer
    phase_c_root: Path
    phase_d_root: Path
    artifact_root: Path
    filters: Mapping[str, tuple | None]
    jobs: tuple[IterativeJob, ...]
    skipped_views: tuple[SkippedView, ...]
    raw: Mapping[str, Any] = field(repr=False)

    def job(self, dose: float, view: str, gridsize: int | None = None, seed: int | None = None) -> IterativeJob:
        """The job of ``(dose, view)`` (``gridsize``/``seed`` when several match).

        Raises
        ------
        ManifestError
            No such job (saying so if the view was skipped), or several match.
        """
        return _one_job(self.path, self.jobs, self.skipped_views, dose, view, gridsize, seed, "gridsize and seed")

    def jobs_with_status(self, status: str) -> tuple[IterativeJob, ...]:
        """Jobs whose status is ``status`` (``success``, ``failed``, ``skipped``)."""
        return tuple(j for j in self.jobs if j.status == status)

    @property
    def doses(self) -> tuple[float, ...]:
        """The distinct doses with a job or a skip, ascending."""
        return tuple(sorted({float(j.dose) for j in self.jobs} | {float(s.dose) for s in self.skipped_views}))
