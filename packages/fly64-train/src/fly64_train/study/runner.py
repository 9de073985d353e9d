"""Phase E study runner: the job matrix, training, manifests and skip summary.

Outputs at the artifact root, rewritten atomically after every job so a crash
loses at most the job in progress:

``training_manifest.json``
    One entry per (dose, view, gridsize) job. Repeated runs into one root
    update their own jobs and keep the others (upsert under a file lock, so two
    runs at once do not lose each other's entries).
``skip_summary.json``
    The manifest's ``skipped_views`` list, identical object.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fly64_data.contract import utc_now
from fly64_data.design import StudyDesign, get_study_design
from fly64_manifest import read_json, write_json
from fly64_train import __version__
from fly64_train.study.matrix import Job, Resolved, build_matrix, filter_jobs, resolve

MANIFEST_NAME = "training_manifest.json"
SKIP_SUMMARY_NAME = "skip_summary.json"
LOCK_NAME = ".training_manifest.lock"
JOB_LOCK_NAME = ".job.lock"
LOG_NAME = "train.log"
PRODUCER = {"package": "fly64-train", "version": __version__}


@dataclass
class StudyRunConfig:
    """What one ``fly64-train`` invocation asks for."""

    phase_c_root: Path
    phase_d_root: Path
    artifact_root: Path
    doses: list[float] | None = None
    views: list[str] | None = None
    gridsizes: list[int] | None = None
    dry_run: bool = False
    train_overrides: dict[str, Any] = field(default_factory=dict)
    evaluate: bool = True


@dataclass
class RunOutcome:
    manifest_path: Path
    jobs: list[dict[str, Any]]
    skipped: list[dict[str, Any]]

    @property
    def failed(self) -> int:
        return sum(1 for job in self.jobs if job["result"]["status"] == "failed")


def plan(cfg: StudyRunConfig, design: StudyDesign | None = None) -> tuple[list[Resolved], list[Resolved]]:
    """Resolve the filtered matrix into runnable jobs and skipped views (no side effects)."""
    design = design or get_study_design()
    jobs = filter_jobs(build_matrix(design), cfg.doses, cfg.views, cfg.gridsizes)
    resolved = [resolve(job, Path(cfg.phase_c_root), Path(cfg.phase_d_root)) for job in jobs]
    return [r for r in resolved if r.skip_reason is None], [r for r in resolved if r.skip_reason is not None]


def run_study(cfg: StudyRunConfig, out: IO[str] | None = None, design: StudyDesign | None = None) -> RunOutcome:
    """Train (or, with ``dry_run``, plan) every selected job and record the results.

    A failing job is recorded as failed and the others still run. Errors that
    make the whole run meaningless (a missing Phase C file) raise before
    anything is written.
    """
    design = design or get_study_design()
    out = out or sys.stdout
    runnable, skipped = plan(cfg, design)
    root = Path(cfg.artifact_root)
    root.mkdir(parents=True, exist_ok=True)
    skip_records = [{"dose": r.job.dose, "view": r.job.view, "gridsize": r.job.gridsize, "reason": r.skip_reason}
                    for r in skipped]
    entries: list[dict[str, Any]] = []
    manifest_path = _update_manifests(cfg, entries, skip_records)
    for item in runnable:
        entry = _run_one(item, cfg, design)
        entries.append(entry)
        manifest_path = _update_manifests(cfg, entries, skip_records)
        _report(out, item.job, entry, root)
    for rec in skip_records:
        print(f"skipped: dose {rec['dose']:g} {rec['view']} gs{rec['gridsize']}: {rec['reason']}", file=out)
    outcome = RunOutcome(manifest_path, entries, skip_records)
    print(f"manifest: {manifest_path} ({len(entries)} jobs, {len(skip_records)} skipped"
          f"{f', {outcome.failed} failed' if outcome.failed else ''})", file=out)
    return outcome


def _report(out: IO[str], job: Job, entry: dict[str, Any], root: Path) -> None:
    result = entry["result"]
    where = f"dose {job.dose:g} view {job.view} gs{job.gridsize}"
    if result["status"] == "success":
        bundle = root / entry["job_dir"] / result["bundle_path"]
        print(f"{where}: bundle {bundle} sha256 {result['bundle_sha256']} size {result['bundle_size_bytes']} bytes",
              file=out)
    elif result["status"] == "failed":
        print(f"{where}: FAILED: {result['error']} (log: {root / entry['job_dir'] / entry['log_path']})", file=out)
    else:
        print(f"{where}: dry run, would train {entry['train_data_path']} (log: "
              f"{root / entry['job_dir'] / entry['log_path']})", file=out)


def _base_entry(item: Resolved, cfg: StudyRunConfig) -> dict[str, Any]:
    job = item.job
    train_rel, test_rel = job.data_paths()
    return {"dose": job.dose, "view": job.view, "gridsize": job.gridsize, "job_dir": job.job_dir,
            "data_root": job.data_root, "train_data_path": train_rel, "test_data_path": test_rel,
            "log_path": LOG_NAME}


def _empty_result(status: str, error: str | None = None, duration: float = 0.0) -> dict[str, Any]:
    return {"status": status, "final_loss": None, "epochs_completed": 0, "checkpoint_path": None,
            "bundle_path": None, "bundle_sha256": None, "bundle_size_bytes": None, "metrics": None,
            "error": error, "duration_s": round(duration, 3)}


def train_config_for(item: Resolved, cfg: StudyRunConfig, design: StudyDesign) -> dict[str, Any]:
    """The TrainConfig fields for one job: design constants, then the user's overrides."""
    job_dir = Path(cfg.artifact_root) / item.job.job_dir
    return {
        "train_path": str(item.train_path), "test_path": str(item.test_path), "job_dir": str(job_dir),
        "gridsize": item.job.gridsize, "neighbor_count": design.neighbor_count,
        "grouping_seed": int(design.rng_seeds["grouping"]), **cfg.train_overrides,
    }


def _run_one(item: Resolved, cfg: StudyRunConfig, design: StudyDesign) -> dict[str, Any]:
    entry = _base_entry(item, cfg)
    job_dir = Path(cfg.artifact_root) / item.job.job_dir
    job_dir.mkdir(parents=True, exist_ok=True)
    train_cfg = train_config_for(item, cfg, design)
    started = time.monotonic()
    with _job_log(job_dir / LOG_NAME) as log:
        log.info("job %s", item.job.label())
        log.info("train data: %s", item.train_path)
        log.info("test data: %s", item.test_path)
        log.info("config: %s", json.dumps(train_cfg, sort_keys=True, default=str))
        if cfg.dry_run:
            log.info("dry run: nothing trained")
            entry["result"] = _empty_result("dry_run")
            return entry
        try:
            with _job_lock(job_dir):
                entry["result"] = _train_and_evaluate(item, train_cfg, cfg, log)
        except Exception as exc:  # noqa: BLE001 - one job's failure must not stop the others
            log.error("FAILED:\n%s", traceback.format_exc())
            message = " ".join(f"{type(exc).__name__}: {exc}".split())
            entry["result"] = _empty_result("failed", message, time.monotonic() - started)
        log.info("result: %s", json.dumps(entry["result"], sort_keys=True))
    return entry


def _train_and_evaluate(item: Resolved, train_cfg: dict[str, Any], cfg: StudyRunConfig,
                        log: logging.Logger) -> dict[str, Any]:
    from fly64_train.backends.torch.train import train_job

    summary = train_job(train_cfg)
    log.info("training finished: %s", json.dumps(summary, sort_keys=True, default=str))
    result = _empty_result("success", None, summary.get("duration_s", 0.0))
    result.update(final_loss=summary.get("final_loss"), epochs_completed=int(summary.get("epochs_completed", 0)),
                  checkpoint_path=summary.get("checkpoint_path"), bundle_path=summary["bundle_path"],
                  bundle_sha256=summary["bundle_sha256"], bundle_size_bytes=summary["bundle_size_bytes"])
    if cfg.evaluate:
        result["metrics"] = _evaluate(item, Path(train_cfg["job_dir"]), summary, log, train_cfg)
    return result


def _evaluate(item: Resolved, job_dir: Path, summary: dict[str, Any], log: logging.Logger,
              train_cfg: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Score the bundle on the test split; ``None`` if the evaluation fails.

    An evaluation failure does not fail the job (its bundle is good): the
    traceback goes to ``train.log``, ``metrics`` stays null, and
    ``fly64-train evaluate`` can score the bundle later.
    """
    from fly64_train.evaluation.evaluate import EvaluationConfig, evaluate_job

    train_cfg = train_cfg or {}
    sigma = float(get_study_design().metrics_config.get("ms_ssim_sigma", 1.0))
    cfg = EvaluationConfig(ms_ssim_sigma=sigma, neighbor_count=train_cfg.get("neighbor_count"),
                           grouping_seed=train_cfg.get("grouping_seed"))
    try:
        metrics = evaluate_job(job_dir / summary["bundle_path"], item.test_path, job_dir, cfg,
                               title=f"{item.job.label()} (test split)")
    except Exception:  # noqa: BLE001 - a scoring problem must not turn a trained job into a failed one
        log.error("evaluation FAILED (metrics left null):\n%s", traceback.format_exc())
        return None
    log.info("metrics: %s", json.dumps(metrics, sort_keys=True))
    return metrics


def update_job_metrics(artifact_root: str | os.PathLike,
                       metrics: dict[tuple[float, str, int], dict[str, Any] | None]) -> Path:
    """Set ``result.metrics`` of existing manifest entries (keyed by dose, view, gridsize).

    Read-modify-write under the root lock, validated and atomic like every
    manifest write; entries not named in ``metrics`` are left as they are.

    Raises
    ------
    KeyError
        If a key names no job of the manifest (nothing is written then).
    """
    root = Path(artifact_root)
    path = root / MANIFEST_NAME
    with _root_lock(root):
        manifest = read_json(path)
        by_key = {_key(job): job for job in manifest["jobs"]}
        missing = [k for k in metrics if (float(k[0]), k[1], int(k[2])) not in by_key]
        if missing:
            raise KeyError(f"{path}: no job for {missing[0]}")
        for key, value in metrics.items():
            by_key[(float(key[0]), key[1], int(key[2]))]["result"]["metrics"] = value
        manifest["timestamp"] = utc_now()
        write_json(path, manifest, "training_manifest")
    return path


@contextlib.contextmanager
def _job_log(path: Path) -> Iterator[logging.Logger]:
    """A per-job logger writing to ``train.log`` (Lightning's own messages included)."""
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger(f"fly64_train.backends.torch.train.{path.parent}")
    log.setLevel(logging.INFO)
    log.propagate = False
    captured = [log, logging.getLogger("lightning.pytorch"), logging.getLogger("lightning.fabric")]
    for logger in captured:
        logger.addHandler(handler)
    try:
        yield log
    finally:
        for logger in captured:
            logger.removeHandler(handler)
        handler.close()


@contextlib.contextmanager
def _job_lock(job_dir: Path) -> Iterator[None]:
    """Refuse to train a job another process is training right now."""
    with open(job_dir / JOB_LOCK_NAME, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"{job_dir}: another fly64-train run is training this job") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _root_lock(root: Path) -> Iterator[None]:
    """Serialize read-merge-write of the manifests between concurrent runs."""
    with open(root / LOCK_NAME, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _key(rec: dict[str, Any]) -> tuple[float, str, int]:
    return (float(rec["dose"]), rec["view"], int(rec["gridsize"]))


def _update_manifests(cfg: StudyRunConfig, entries: list[dict[str, Any]],
                      skip_records: list[dict[str, Any]]) -> Path:
    """Upsert this run's jobs and skips into the root's manifest and skip summary."""
    root = Path(cfg.artifact_root)
    path = root / MANIFEST_NAME
    with _root_lock(root):
        previous = read_json(path) if path.is_file() else {}
        this_run = {_key(e) for e in entries} | {_key(s) for s in skip_records}
        jobs = {_key(e): e for e in previous.get("jobs", []) if _key(e) not in this_run}
        jobs.update({_key(e): e for e in entries})
        skips = {_key(s): s for s in previous.get("skipped_views", []) if _key(s) not in this_run}
        skips.update({_key(s): s for s in skip_records})
        skipped = [skips[k] for k in sorted(skips)]
        now = utc_now()
        manifest = {
            "schema_version": "1.0", "kind": "training_manifest", "timestamp": now, "producer": PRODUCER,
            "phase_c_root": _relative_root(cfg.phase_c_root, root),
            "phase_d_root": _relative_root(cfg.phase_d_root, root),
            "artifact_root": ".",
            "filters": {"dose": cfg.doses, "view": cfg.views, "gridsize": cfg.gridsizes},
            "backend": "pytorch", "dry_run": cfg.dry_run,
            "jobs": [jobs[k] for k in sorted(jobs)],
            "skipped_views": skipped, "skipped_count": len(skipped), "skip_summary_path": SKIP_SUMMARY_NAME,
        }
        summary = {"schema_version": "1.0", "kind": "skip_summary", "timestamp": now,
                   "skipped_views": skipped, "skipped_count": len(skipped)}
        write_json(root / SKIP_SUMMARY_NAME, summary, "skip_summary")
        write_json(path, manifest, "training_manifest")
    return path


def _relative_root(path: Path, root: Path) -> str:
    return os.path.relpath(Path(path).resolve(), root.resolve()).replace(os.sep, "/")
