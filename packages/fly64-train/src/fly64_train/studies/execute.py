"""Train and evaluate one planned job: ``run_job(spec) -> JobRecord``.

A top-level function of a picklable :class:`JobSpec` with no shared state, so an
executor (this process, a Dask cluster) can run it anywhere the data and the
artifact root are visible; the caller records what it returns. It writes only
inside the job's own folder (``train.log``, ``attempts.json``, checkpoints,
bundle, reconstruction): the client that submitted it writes the root manifests.

A job that fails for a reason of its own (bad data, a bug) comes back as a
``failed`` record and is not retried; only a worker that dies mid-job makes
Dask start the task again, and then ``attempts.json`` counts on and training
resumes from ``checkpoints/last.ckpt`` (``TrainConfig.resume``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from fly64_data.contract import utc_now
from fly64_manifest import ensure_dir, locked, open_append, read_json, write_json
from fly64_train.core.seam import get_backend
from fly64_train.evaluation.evaluate import RECONSTRUCTION_H5
from fly64_train.evaluation.scorecard import Scorecard
from fly64_train.studies.divergence import divergence
from fly64_train.studies.job_log import job_logger
from fly64_train.studies.job_record import Artifact, JobRecord, JobResult
from fly64_train.studies.job_spec import JobSpec
from fly64_train.training.result import TrainResult
from fly64_train.training.stops import JobInterrupted, NothingTrained

JOB_LOCK_NAME = ".job.lock"
#: Per-job count of the starts of the current run (a retry after a lost worker counts on).
ATTEMPTS_NAME = "attempts.json"


def run_job(spec: JobSpec) -> JobRecord:
    """Train ``spec`` (or, for a dry run, only log it) and evaluate the bundle.

    Never raises for a job's own failure: a job that cannot train is returned
    as ``failed`` with a one-line error, the traceback is in its ``train.log``.
    """
    spec.check()
    ensure_dir(spec.job_dir, spec.artifact_root or spec.job_dir, what="job folder")
    started = time.monotonic()
    where = ran_on()
    attempts = 1
    with _job_log(spec.log_path) as log:
        log.info("job %s", spec.job.label())
        log.info("train data: %s", spec.train.train_path)
        log.info("test data: %s", spec.train.test_path)
        log.info("config: %r", spec.train)
        if spec.dry_run:
            log.info("dry run: nothing trained")
            result = JobResult(status="dry_run", ran_on=where)
        else:
            try:
                attempts = record_attempt(spec.job_dir, spec.run_id)
                log.info("attempt %d on %s", attempts, where)
                with _job_lock(spec.job_dir):
                    result = _train_and_evaluate(spec, log, attempts, where)
            except JobInterrupted as exc:
                # Not a result: the runner records the job as interrupted and the whole run stops.
                log.warning("INTERRUPTED by %s: checkpoints kept, a rerun resumes this job", exc.signal_name)
                raise
            except NothingTrained as exc:
                log.warning("INTERRUPTED: %s", exc)
                result = JobResult.interrupted(str(exc), time.monotonic() - started, attempts, where)
            except Exception as exc:  # noqa: BLE001 - one job's failure must not stop the others
                log.error("FAILED:\n%s", traceback.format_exc())
                result = JobResult.failed(" ".join(f"{type(exc).__name__}: {exc}".split()),
                                          time.monotonic() - started, attempts, where)
        log.info("result: %r", result)
    return JobRecord(job=spec.job, backend=spec.train.backend, result=result, context=spec.context)


def record_attempt(job_dir: Path, run_id: str) -> int:
    """Count one more start of this job by run ``run_id`` in ``<job_dir>/attempts.json``; return the count.

    The file is replaced atomically, so a worker killed at any moment leaves
    either the previous count or the new one.
    """
    path = job_dir / ATTEMPTS_NAME
    previous = read_json(path) if path.is_file() else {}
    history = list(previous.get("history", [])) if previous.get("run_id") == run_id else []
    history.append({"started": utc_now(), "host": socket.gethostname(), "pid": os.getpid()})
    write_json(path, {"run_id": run_id, "attempts": len(history), "history": history})
    return len(history)


def started_attempts(job_dir: Path, run_id: str) -> int:
    """Starts of this job by run ``run_id`` so far (0: this run never started it)."""
    path = job_dir / ATTEMPTS_NAME
    try:
        previous = read_json(path) if path.is_file() else {}
    except ValueError:  # an unreadable record: this run cannot claim the job
        return 0
    if not isinstance(previous, dict) or previous.get("run_id") != run_id:
        return 0
    attempts = previous.get("attempts")
    return attempts if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts > 0 else 0


def ran_on() -> str:
    """The Dask worker's address when running as a Dask task, else this host and process."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):  # ValueError: not inside a Dask worker
        return f"{socket.gethostname()} pid {os.getpid()}"


def _train_and_evaluate(spec: JobSpec, log: logging.Logger, attempts: int, where: str) -> JobResult:
    """Train, evaluate and judge the result: success, failed (its evaluation failed) or diverged."""
    trained = as_train_result(get_backend(spec.train.backend).train(spec.train))
    log.info("training finished: %r", trained)
    metrics, error = _evaluate(spec, trained, log) if spec.evaluate else (None, None)
    artifacts = (Artifact.of(spec.job_dir, RECONSTRUCTION_H5),) if metrics is not None else ()
    if error is not None:
        # The bundle is good and stays recorded, but a job whose evaluation failed is not a success.
        return JobResult.trained(trained, None, attempts, where, status="failed", error=error)
    reason = divergence(spec.job_dir, trained.log_path, trained.monitor, spec.job_dir if metrics else None)
    if reason is not None:
        log.warning("DIVERGED: %s", reason)
        return JobResult.trained(trained, metrics, attempts, where, artifacts, status="diverged", error=reason)
    return JobResult.trained(trained, metrics, attempts, where, artifacts)


def as_train_result(result: TrainResult | Mapping[str, Any]) -> TrainResult:
    # Transitional: the torch backend's train_job returns a dict with TrainResult's keys until
    # it returns the TrainResult itself; drop this adapter then.
    if isinstance(result, TrainResult):
        return result
    return TrainResult(**{f.name: result[f.name] for f in fields(TrainResult) if f.name in result})


def _evaluate(spec: JobSpec, trained: TrainResult, log: logging.Logger) -> tuple[Scorecard | None, str | None]:
    """Score the bundle on the test split: ``(metrics, None)``, or ``(None, reason)`` if the evaluation fails.

    A failed evaluation makes the job ``failed`` with that one-line reason (the console and the exit
    status say so); the traceback goes to ``train.log``, the bundle stays recorded, and a rerun
    (which resumes the finished training) evaluates again.
    """
    from fly64_train.evaluation.evaluate import score_job

    try:
        metrics = score_job(spec.job_dir / trained.bundle_path, spec.train.test_path, spec.job_dir,
                            spec.evaluation, title=f"{spec.job.label()} (test split)",
                            expected_sha256=trained.bundle_sha256,
                            losses=_losses(spec.job_dir, trained.log_path))
    except Exception as exc:  # noqa: BLE001 - recorded as this job's failure; the other jobs go on
        log.error("evaluation FAILED (metrics left null):\n%s", traceback.format_exc())
        return None, " ".join(f"evaluation failed: {type(exc).__name__}: {exc}".split())
    log.info("metrics: %r", metrics.to_json())
    return metrics, None


def _losses(job_dir: Path, log_path: str | None) -> list[float]:
    """Per-epoch training loss from the job's CSV log (empty without one): the product's loss curve."""
    import csv

    path = job_dir / log_path if log_path else None
    if path is None or not path.is_file() or path.suffix != ".csv":
        return []
    with path.open(newline="") as fh:
        return [float(row["train_loss"]) for row in csv.DictReader(fh) if row.get("train_loss")]


def _job_log(path: Path) -> contextlib.AbstractContextManager[logging.Logger]:
    """A per-job logger writing to ``train.log`` (Lightning's own messages included).

    Opened without following a link (a planted ``train.log`` link is refused, its target untouched).
    """
    return job_logger(open_append(path, what="job log"), f"fly64_train.studies.job.{path.parent}",
                      ("lightning.pytorch", "lightning.fabric"))


@contextlib.contextmanager
def _job_lock(job_dir: Path) -> Iterator[None]:
    """Refuse to train a job another process is training right now (the lock file: no link, never truncated)."""
    with locked(job_dir / JOB_LOCK_NAME, blocking=False, what="job lock file",
                busy=f"{job_dir}: another fly64-train run is training this job"):
        yield
