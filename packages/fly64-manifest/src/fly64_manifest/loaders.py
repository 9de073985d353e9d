"""Read each phase's manifest into the frozen models of :mod:`fly64_manifest.models`.

Every loader takes the JSON file itself, the folder holding it, or a study root
(``<root>/phase_c``, ``phase_d`` or ``phase_e`` below it). It refuses a newer major
``schema_version``, validates against the packaged schema, and resolves every
recorded path, refusing ones that are absolute or escape their root.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from fly64_manifest.backend_names import backend_name
from fly64_manifest.io import ManifestError, read_json
from fly64_manifest.models import (
    ArtifactRecord,
    DoseData,
    FileRecord,
    IterativeJob,
    IterativeManifest,
    OverlapManifest,
    OverlapView,
    Producer,
    RunManifest,
    SkippedView,
    SkipSummary,
    TrainingJob,
    TrainingManifest,
    freeze,
    load_overlap_metrics,
)
from fly64_manifest.paths import resolve_inside, resolve_root
from fly64_manifest.schema import KINDS, read_checked

#: A Phase E or Phase F job (both have ``key``, ``seed``, ``view``, ``gridsize`` and ``dose``).
_Job = TypeVar("_Job", TrainingJob, IterativeJob)

__all__ = ["ITERATIVE_MANIFEST", "OVERLAP_MANIFEST", "RUN_MANIFEST", "SKIP_SUMMARY", "TRAINING_MANIFEST",
           "load_iterative_manifest", "load_overlap_manifest", "load_overlap_metrics", "load_run_manifest",
           "load_skip_summary", "load_training_manifest", "locate", "read_checked"]

#: File name and study sub-folder of each phase's manifest.
RUN_MANIFEST = ("run_manifest.json", "phase_c")
OVERLAP_MANIFEST = ("overlap_manifest.json", "phase_d")
TRAINING_MANIFEST = ("training_manifest.json", "phase_e")
SKIP_SUMMARY = ("skip_summary.json", "phase_e")
ITERATIVE_MANIFEST = ("iterative_manifest.json", "phase_f")


def locate(root_or_file: str | os.PathLike, filename: str, phase_dir: str) -> Path:
    """Find ``filename`` given the file, its folder, or the study root; absolute path."""
    given = Path(root_or_file)
    candidates = [given] if given.is_file() else [given / filename, given / phase_dir / filename]
    for candidate in candidates:
        if candidate.is_file():
            return Path(os.path.abspath(candidate)).parent.resolve() / candidate.name
    raise ManifestError(f"{given}: no {filename} (looked at {', '.join(str(c) for c in candidates)})")


def _file_record(raw: Mapping[str, Any], base: Path, root: Path, where: str) -> FileRecord:
    return FileRecord(
        path=resolve_inside(raw["path"], base, root, f"{where}/path"),
        recorded=raw["path"],
        sha256=raw.get("sha256"),
        size_bytes=raw.get("size_bytes"),
        n_positions=raw.get("n_positions"),
    )


def _skipped(raw: Mapping[str, Any]) -> SkippedView:
    return SkippedView(
        dose=raw["dose"], view=raw["view"], gridsize=raw.get("gridsize"),
        reason=str(raw.get("reason") or raw.get("skip_reason") or "skipped"),
    )


# --------------------------------------------------------------------------- Phase C


def load_run_manifest(root_or_file: str | os.PathLike) -> RunManifest:
    """Load Phase C ``run_manifest.json``; file paths are relative to its folder."""
    path = locate(root_or_file, *RUN_MANIFEST)
    doc = read_checked(path, "run_manifest")
    base = path.parent
    doses = []
    for i, raw in enumerate(doc["doses"]):
        where = f"{path}: doses/{i}"
        doses.append(DoseData(
            dose=raw["dose"],
            directory=resolve_inside(raw["directory"], base, base, f"{where}/directory"),
            measured_mean_counts=raw["measured_mean_counts"],
            intensity_scale=raw["intensity_scale"],
            noise_seed=raw["noise_seed"],
            files=freeze({
                split: _file_record(rec, base, base, f"{where}/files/{split}")
                for split, rec in raw["files"].items()
            }),
        ))
    return RunManifest(
        path=path, root=base, schema_version=doc["schema_version"], created=doc["created"],
        producer=Producer(**{k: doc["producer"][k] for k in ("package", "version")}),
        doses=tuple(doses), raw=freeze(doc),
    )


# --------------------------------------------------------------------------- Phase D


def load_overlap_manifest(root_or_file: str | os.PathLike) -> OverlapManifest:
    """Load Phase D ``overlap_manifest.json`` (written by fly64-overlap).

    Returns the written views (``status`` "ok") with their ``train``/``test`` data
    records and ``<view>_metrics.json`` record, and the skipped views. Paths are
    relative to the manifest's folder (the Phase D root). Fields this reader does
    not model stay available in ``raw``.
    """
    path = locate(root_or_file, *OVERLAP_MANIFEST)
    if "overlap_manifest" in KINDS:
        doc = read_checked(path, "overlap_manifest")
    else:
        doc = read_json(path)
    if not isinstance(doc, Mapping):
        raise ManifestError(f"{path}: overlap manifest is not a JSON object")
    base = path.parent
    views: list[OverlapView] = []
    skipped = [_skipped(s) for s in doc.get("skipped_views") or () if isinstance(s, Mapping)]
    for i, entry in enumerate(doc.get("views") or ()):
        where = f"{path}: views/{i}"
        # fly64-overlap lists a skipped view both here (status "skipped") and in skipped_views.
        if entry.get("status", "ok") != "ok":
            skip = _skipped(entry)
            if not any(s.key[:2] == skip.key[:2] for s in skipped):
                skipped.append(skip)
            continue
        records = {
            name: _file_record(rec, base, base, f"{where}/files/{name}")
            for name, rec in (entry.get("files") or {}).items()
            if isinstance(rec, Mapping) and isinstance(rec.get("path"), str)
        }
        metrics_file = records.pop("metrics", None)
        views.append(OverlapView(
            dose=entry["dose"], view=entry["view"], files=freeze(records), metrics_file=metrics_file,
            raw=freeze(entry),
            # 1.0 manifests predate the basis: they were all built with S = (1 - f) N.
            spacing_basis=entry.get("spacing_basis", "patch"),
            matched_to=entry.get("matched_to"), matched_from=entry.get("matched_from"),
        ))
    version = doc.get("schema_version")
    return OverlapManifest(
        path=path, root=base, schema_version=version if isinstance(version, str) else None,
        views=tuple(views), skipped_views=tuple(skipped), raw=freeze(doc),
    )


# --------------------------------------------------------------------------- jobs (Phase E and F)


class _JobPaths:
    """Resolves one job's recorded paths: its folder, its data file and the files it wrote."""

    def __init__(self, raw: Mapping[str, Any], base: Path, roots: Mapping[str, Path], where: str) -> None:
        self.base, self.where = base, where
        self.job_dir = resolve_inside(raw["job_dir"], base, base, f"{where}/job_dir")
        self.data_base = roots[raw["data_root"]]

    def data(self, field: str, value: str) -> Path:
        """A split the job read: inside the data root it names."""
        return resolve_inside(value, self.data_base, self.data_base, f"{self.where}/{field}")

    def in_job(self, field: str, value: str | None) -> Path | None:
        """A file the job wrote (``None`` stays ``None``)."""
        # Job files may sit in sub-folders of the job dir but never outside the artifact root.
        return None if value is None else resolve_inside(value, self.job_dir, self.base, f"{self.where}/{field}")

    def artifacts(self, records: Any, field: str) -> tuple[ArtifactRecord, ...]:
        """The artifact records under ``field`` (e.g. ``result/artifacts``), paths checked."""
        return tuple(
            ArtifactRecord(self.in_job(f"{field}/{k}/path", a["path"]), a["path"], a["sha256"], a["size_bytes"])
            for k, a in enumerate(records))


def _unique_jobs(path: Path, raws: Any, make: Callable[[Mapping[str, Any], str], _Job]) -> tuple[_Job, ...]:
    """``make(raw, where)`` for each recorded job, refusing a second job with one ``key``."""
    jobs: list[_Job] = []
    seen: dict[tuple[float, str, int, int | None], int] = {}
    for i, raw in enumerate(raws):
        job = make(raw, f"{path}: jobs/{i}")
        if job.key in seen:
            seed = "" if job.seed is None else f" seed {job.seed}"
            raise ManifestError(f"{path}: jobs/{i} repeats job {job.view} gs{job.gridsize}{seed} at dose "
                                f"{job.dose:g} (first at jobs/{seen[job.key]})")
        seen[job.key] = i
        jobs.append(job)
    return tuple(jobs)


# --------------------------------------------------------------------------- Phase E


def _job(raw: Mapping[str, Any], base: Path, roots: Mapping[str, Path], where: str) -> TrainingJob:
    paths = _JobPaths(raw, base, roots, where)
    result = raw["result"]
    return TrainingJob(
        dose=raw["dose"], view=raw["view"], gridsize=raw["gridsize"], status=result["status"],
        job_dir=paths.job_dir, data_root=raw["data_root"],
        train_data_path=paths.data("train_data_path", raw["train_data_path"]),
        test_data_path=paths.data("test_data_path", raw["test_data_path"]),
        log_path=paths.in_job("log_path", raw["log_path"]),
        checkpoint_path=paths.in_job("result/checkpoint_path", result["checkpoint_path"]),
        bundle_path=paths.in_job("result/bundle_path", result["bundle_path"]),
        bundle_sha256=result["bundle_sha256"], bundle_size_bytes=result["bundle_size_bytes"],
        final_loss=result["final_loss"], epochs_completed=result["epochs_completed"],
        metrics=freeze(result["metrics"]), error=result["error"], duration_s=result["duration_s"],
        raw=freeze(raw), attempts=result.get("attempts"),
        artifacts=paths.artifacts(result.get("artifacts") or (), "result/artifacts"),
    )


def load_training_manifest(root_or_file: str | os.PathLike) -> TrainingManifest:
    """Load Phase E ``training_manifest.json``.

    Parameters
    ----------
    root_or_file
        The manifest, the artifact root holding it, or a study root (``<root>/phase_e``).

    Returns
    -------
    TrainingManifest
        Jobs with absolute, checked paths; look one up with ``manifest.job(dose, view)``.

    Raises
    ------
    ManifestError
        Missing or invalid file, newer major version, a path that is absolute or
        escapes its root, or two jobs with one (dose, view, gridsize).
    """
    path = locate(root_or_file, *TRAINING_MANIFEST)
    doc = read_checked(path, "training_manifest")
    base = path.parent
    roots = {name: resolve_root(doc[name], base) for name in ("phase_c_root", "phase_d_root", "artifact_root")}
    jobs = _unique_jobs(path, doc["jobs"], lambda raw, where: _job(raw, base, roots, where))
    return TrainingManifest(
        path=path, root=base, schema_version=doc["schema_version"], timestamp=doc["timestamp"],
        producer=Producer(**{k: doc["producer"][k] for k in ("package", "version")}),
        phase_c_root=roots["phase_c_root"], phase_d_root=roots["phase_d_root"],
        artifact_root=roots["artifact_root"], filters=freeze(doc["filters"]),
        backend=backend_name(doc["backend"]),
        dry_run=doc["dry_run"], jobs=jobs, skipped_views=tuple(_skipped(s) for s in doc["skipped_views"]),
        skipped_count=doc["skipped_count"], skip_summary_path=base / doc["skip_summary_path"], raw=freeze(doc),
    )


def load_skip_summary(root_or_file: str | os.PathLike) -> SkipSummary:
    """Load Phase E ``skip_summary.json`` (the file, the artifact root, or a study root)."""
    path = locate(root_or_file, *SKIP_SUMMARY)
    doc = read_checked(path, "skip_summary")
    return SkipSummary(
        path=path, schema_version=doc["schema_version"], timestamp=doc["timestamp"],
        skipped_views=tuple(_skipped(s) for s in doc["skipped_views"]), skipped_count=doc["skipped_count"],
    )


# --------------------------------------------------------------------------- Phase F


def _iterative_job(raw: Mapping[str, Any], base: Path, roots: Mapping[str, Path], where: str) -> IterativeJob:
    paths = _JobPaths(raw, base, roots, where)
    return IterativeJob(
        dose=raw["dose"], view=raw["view"], gridsize=raw["gridsize"], seed=raw.get("seed"),
        status=raw["status"], error=raw["error"], job_dir=paths.job_dir, data_root=raw["data_root"],
        test_data_path=paths.data("test_data_path", raw["test_data_path"]),
        engine=raw["engine"], engine_options=freeze(raw["engine_options"]), epochs=raw["epochs"],
        batch_size=raw["batch_size"], noise_model=raw["noise_model"], device=raw["device"],
        wall_time_s=raw["wall_time_s"], duration_s=raw["duration_s"], n_patterns=raw["n_patterns"],
        reconstruction_path=paths.in_job("reconstruction_path", raw["reconstruction_path"]),
        reconstruction_sha256=raw["reconstruction_sha256"],
        reconstruction_size_bytes=raw["reconstruction_size_bytes"],
        artifacts=paths.artifacts(raw["artifacts"], "artifacts"),
        metrics=freeze(raw["metrics"]), raw=freeze(raw),
    )


def load_iterative_manifest(root_or_file: str | os.PathLike) -> IterativeManifest:
    """Load Phase F ``iterative_manifest.json``.

    Parameters
    ----------
    root_or_file
        The manifest, the artifact root holding it, or a study root (``<root>/phase_f``).

    Returns
    -------
    IterativeManifest
        Jobs with absolute, checked paths; pair one with its PINN job by ``job.key``.

    Raises
    ------
    ManifestError
        Missing or invalid file, newer major version, a path that is absolute or
        escapes its root, or two jobs with one (dose, view, gridsize, seed).
    """
    path = locate(root_or_file, *ITERATIVE_MANIFEST)
    doc = read_checked(path, "iterative_manifest")
    base = path.parent
    roots = {name: resolve_root(doc["roots"][name], base)
             for name in ("phase_c_root", "phase_d_root", "artifact_root")}
    jobs = _unique_jobs(path, doc["jobs"], lambda raw, where: _iterative_job(raw, base, roots, where))
    return IterativeManifest(
        path=path, root=base, schema_version=doc["schema_version"], created=doc["created"],
        producer=Producer(**{k: doc["producer"][k] for k in ("package", "version")}),
        phase_c_root=roots["phase_c_root"], phase_d_root=roots["phase_d_root"],
        artifact_root=roots["artifact_root"], filters=freeze(doc["filters"]), jobs=jobs,
        skipped_views=tuple(_skipped(s) for s in doc["skipped_views"]), raw=freeze(doc),
    )
