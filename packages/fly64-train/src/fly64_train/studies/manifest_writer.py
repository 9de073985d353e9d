"""The one place Phase E results become JSON: ``training_manifest.json`` and ``skip_summary.json``.

Writes are read-merge-write under a lock on the artifact root, schema-validated and
atomic, so concurrent runs into one root (or an executor's client recording jobs
as they finish) keep each other's entries. Earlier entries are read back through
:func:`fly64_manifest.load_training_manifest` and kept as they were recorded.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fly64_data.contract import utc_now
from fly64_manifest import SkippedView, load_training_manifest, locked, write_json
from fly64_manifest.models import thaw
from fly64_train import __version__
from fly64_train.evaluation.scorecard import Scorecard, metrics_json
from fly64_train.studies.job_record import Artifact, JobRecord

MANIFEST_NAME = "training_manifest.json"
SKIP_SUMMARY_NAME = "skip_summary.json"
LOCK_NAME = ".training_manifest.lock"
PRODUCER = {"package": "fly64-train", "version": __version__}

#: A job: (dose, view, gridsize, seed); seed is None for the one-seed layout.
Key = tuple[float, str, int, int | None]
#: The training manifest version written (1.1: optional seed, context, n_groups, artifacts).
SCHEMA_VERSION = "1.1"


@dataclass(frozen=True)
class RunHeader:
    """The run-level fields of the manifest: what the run that writes it asked for."""

    phase_c_root: Path
    """Phase C root as given (recorded relative to the artifact root)."""
    phase_d_root: Path
    """Phase D root as given."""
    artifact_root: Path
    """Where the manifest lives."""
    doses: Sequence[float] | None
    """The ``--dose`` filter (``None``: all)."""
    views: Sequence[str] | None
    """The ``--view`` filter."""
    gridsizes: Sequence[int] | None
    """The ``--gridsize`` filter."""
    backend: str
    """The run's backend name."""
    dry_run: bool
    """Whether the run only planned."""


def record(header: RunHeader, records: Sequence[JobRecord], skips: Sequence[SkippedView]) -> Path:
    """Upsert ``records`` and ``skips`` by (dose, view, gridsize, seed), keeping every other entry; both files."""
    root = Path(header.artifact_root)
    path = root / MANIFEST_NAME
    with root_lock(root):
        previous = _previous(path)
        # A dry run plans; it never writes over a result a real run recorded (sha256, metrics).
        fresh = {r.key: job_json(r) for r in records
                 if not (r.result.status == "dry_run" and _holds_result(previous["jobs"].get(r.key)))}
        this_run = set(fresh) | {_key(s) for s in skips}
        jobs = {k: doc for k, doc in previous["jobs"].items() if k not in this_run}
        jobs.update(fresh)
        skipped = {k: doc for k, doc in previous["skipped"].items() if k not in this_run}
        skipped.update({_key(s): skip_json(s) for s in skips})
        skipped_list = [skipped[k] for k in sorted(skipped)]
        now = utc_now()
        manifest = {
            "schema_version": SCHEMA_VERSION, "kind": "training_manifest", "timestamp": now, "producer": PRODUCER,
            "phase_c_root": _relative_root(header.phase_c_root, root),
            "phase_d_root": _relative_root(header.phase_d_root, root),
            "artifact_root": ".",
            "filters": {"dose": _listed(header.doses), "view": _listed(header.views),
                        "gridsize": _listed(header.gridsizes)},
            "backend": header.backend, "dry_run": header.dry_run,
            "jobs": [jobs[k] for k in sorted(jobs)],
            "skipped_views": skipped_list, "skipped_count": len(skipped_list),
            "skip_summary_path": SKIP_SUMMARY_NAME,
        }
        summary = {"schema_version": SCHEMA_VERSION, "kind": "skip_summary", "timestamp": now,
                   "skipped_views": skipped_list, "skipped_count": len(skipped_list)}
        write_json(root / SKIP_SUMMARY_NAME, summary, "skip_summary")
        write_json(path, manifest, "training_manifest")
    return path


def update_job_metrics(artifact_root: str | os.PathLike, metrics: Mapping[Key, Scorecard | Mapping[str, Any] | None],
                       artifacts: Mapping[Key, Sequence[Artifact]] | None = None) -> Path:
    """Set ``result.metrics`` (and ``result.artifacts``) of existing entries (keyed like :data:`Key`).

    Read-modify-write under the root lock, validated and atomic like every
    manifest write; entries not named in ``metrics`` are left as they are.

    Raises
    ------
    KeyError
        If a key names no job of the manifest (nothing is written then).
    """
    root = Path(artifact_root)
    path = root / MANIFEST_NAME
    with root_lock(root):
        manifest = load_training_manifest(path)
        doc = thaw(manifest.raw)
        by_key = {job.key: raw for job, raw in zip(manifest.jobs, doc["jobs"], strict=True)}
        wanted = {(float(k[0]), k[1], int(k[2]), k[3]): v for k, v in metrics.items()}
        missing = [k for k in wanted if k not in by_key]
        if missing:
            raise KeyError(f"{path}: no job for {missing[0]}")
        for key, value in wanted.items():
            by_key[key]["result"]["metrics"] = metrics_json(value)
        for key, files in (artifacts or {}).items():
            by_key[(float(key[0]), key[1], int(key[2]), key[3])]["result"]["artifacts"] = [a.as_json() for a in files]
        doc["schema_version"] = SCHEMA_VERSION
        doc["timestamp"] = utc_now()
        write_json(path, doc, "training_manifest")
    return path


def job_json(rec: JobRecord) -> dict[str, Any]:
    """The manifest entry of one job."""
    job, result = rec.job, rec.result
    train_rel, test_rel = job.data_paths()
    seed = {} if job.seed is None else {"seed": job.seed}
    return {
        "dose": job.dose, "view": job.view, "gridsize": job.gridsize, **seed, "job_dir": job.job_dir,
        "data_root": job.data_root, "train_data_path": train_rel, "test_data_path": test_rel,
        "log_path": rec.log_path, "backend": rec.backend, "context": rec.context.as_json(),
        "result": {
            "status": result.status, "final_loss": result.final_loss,
            "epochs_completed": result.epochs_completed, "checkpoint_path": result.checkpoint_path,
            "bundle_path": result.bundle_path, "bundle_sha256": result.bundle_sha256,
            "bundle_size_bytes": result.bundle_size_bytes, "metrics": metrics_json(result.metrics),
            "error": result.error, "duration_s": round(result.duration_s, 3), "attempts": result.attempts,
            "n_groups": result.n_groups, "artifacts": [a.as_json() for a in result.artifacts],
            **({"stop_reason": result.stop_reason} if result.stop_reason else {}),
        },
    }


def skip_json(skip: SkippedView) -> dict[str, Any]:
    """The ``skipped_views`` entry of one skip."""
    return {"dose": skip.dose, "view": skip.view, "gridsize": skip.gridsize, "reason": skip.reason}


def _previous(path: Path) -> dict[str, dict[Key, dict[str, Any]]]:
    """Entries already recorded, as written (read through the typed loader, which checks them), but a job's
    backend in today's spelling (files before fly64-train 0.4 wrote torch as ``pytorch``)."""
    if not path.is_file():
        return {"jobs": {}, "skipped": {}}
    manifest = load_training_manifest(path)
    doc = thaw(manifest.raw)
    return {"jobs": {job.key: raw | ({"backend": job.backend} if job.backend else {})
                     for job, raw in zip(manifest.jobs, doc["jobs"], strict=True)},
            "skipped": {_key(s): raw for s, raw in zip(manifest.skipped_views, doc["skipped_views"], strict=True)}}


@contextlib.contextmanager
def root_lock(root: Path) -> Iterator[None]:
    """Serialize read-merge-write of the manifests between concurrent runs (the lock file: no link, never truncated)."""
    root.mkdir(parents=True, exist_ok=True)
    with locked(root / LOCK_NAME, what="artifact root lock file"):
        yield


def _holds_result(entry: Mapping[str, Any] | None) -> bool:
    """Whether a recorded entry is the result of a real run (not a dry run's plan)."""
    return entry is not None and entry["result"]["status"] != "dry_run"


def _key(skip: SkippedView) -> Key:
    return (float(skip.dose), skip.view, int(skip.gridsize), None)


def _listed(values: Sequence[Any] | None) -> list[Any] | None:
    return None if values is None else list(values)


def _relative_root(path: Path, root: Path) -> str:
    return os.path.relpath(Path(path).resolve(), root.resolve()).replace(os.sep, "/")
