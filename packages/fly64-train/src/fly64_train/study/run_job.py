"""One study job as an executor task: train, evaluate, and say how it went.

:func:`run_job` is a top-level function so Dask can send it to a worker by
reference; its argument (:class:`JobSpec`) and its return value
(:class:`JobResult`) are plain picklable dataclasses. It writes only inside
the job's own folder (``train.log``, ``attempts.json``, checkpoints, bundle,
reconstruction); the client that submitted it writes the root manifests.

A job that fails for a reason of its own (bad data, a bug) comes back as a
``failed`` result and is not retried; only a worker that dies mid-job makes
Dask start the task again, and then the job resumes from
``checkpoints/last.ckpt`` (``train_job`` does that when the file exists).
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fly64_data.contract import utc_now
from fly64_manifest import read_json, write_json
from fly64_train.evaluate import EvaluationConfig
from fly64_train.job import TrainConfig
from fly64_train.runner import LOG_NAME, _job_lock, _job_log

ATTEMPTS_NAME = "attempts.json"


@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs to run one job.

    Attributes
    ----------
    label : str
        Human-readable job name, e.g. ``"dose 1000 dense gs2"``; also the Dask task key.
    train : TrainConfig
        The training settings; ``train.job_dir`` is the job's folder.
    run_id : str
        Identifies the client run that submitted the job: attempts are counted
        per run, so a later run of the same job starts again at 1.
    evaluation : EvaluationConfig, optional
        Score the bundle on ``train.test_path`` with these settings; ``None`` skips scoring.
    """

    label: str
    train: TrainConfig
    run_id: str
    evaluation: EvaluationConfig | None = None

    @property
    def job_dir(self) -> Path:
        return Path(self.train.job_dir)


@dataclass(frozen=True)
class JobResult:
    """What came of one job, as the client records it.

    Attributes
    ----------
    label : str
        The spec's label.
    status : str
        ``"success"`` or ``"failed"``.
    error : str, optional
        One line, when failed (the traceback is in ``train.log``).
    attempts : int
        Times this run started the job (more than 1 after a lost worker).
    host, pid : str, int
        Where the last attempt ran.
    duration_s : float
        Wall time of the last attempt.
    final_loss, best_loss : float, optional
        Last epoch's training loss; lowest monitored loss.
    epochs_completed, global_step : int
        Training progress at the end (counting epochs done before a resume).
    resumed_from : str, optional
        Checkpoint the last attempt continued from, relative to the job folder.
    checkpoint_path, bundle_path : str, optional
        ``checkpoints/last.ckpt`` and ``wts.h5.zip``, relative to the job folder.
    bundle_sha256 : str, optional
        64 lowercase hex digits of the bundle's bytes.
    bundle_size_bytes : int, optional
    metrics : dict, optional
        The evaluation's manifest ``metrics`` object; ``None`` when not scored or scoring failed.
    """

    label: str
    status: str
    attempts: int
    host: str
    pid: int
    duration_s: float
    error: str | None = None
    final_loss: float | None = None
    best_loss: float | None = None
    epochs_completed: int = 0
    global_step: int = 0
    resumed_from: str | None = None
    checkpoint_path: str | None = None
    bundle_path: str | None = None
    bundle_sha256: str | None = None
    bundle_size_bytes: int | None = None
    metrics: dict[str, Any] | None = None


def run_job(spec: JobSpec) -> JobResult:
    """Train and (optionally) evaluate one job; never raises for the job's own failures."""
    started = time.monotonic()
    spec.job_dir.mkdir(parents=True, exist_ok=True)
    where = {"host": socket.gethostname(), "pid": os.getpid()}
    attempts = 0
    with _job_log(spec.job_dir / LOG_NAME) as log:
        try:
            attempts = record_attempt(spec.job_dir, spec.run_id)
            log.info("job %s, attempt %d on %s pid %d", spec.label, attempts, where["host"], where["pid"])
            with _job_lock(spec.job_dir):
                result = _train_and_evaluate(spec, attempts, where, started, log)
        except Exception as exc:  # noqa: BLE001 - a job's own failure is its result, never a retry
            log.error("FAILED:\n%s", traceback.format_exc())
            result = JobResult(spec.label, "failed", attempts, **where, duration_s=_since(started),
                               error=" ".join(f"{type(exc).__name__}: {exc}".split()))
        log.info("result: status %s, attempts %d, %.1f s", result.status, result.attempts, result.duration_s)
    return result


def record_attempt(job_dir: Path, run_id: str) -> int:
    """Count one more start of this job by run ``run_id`` in ``<job_dir>/attempts.json``; return the count.

    The file is replaced atomically, so a worker killed at any moment leaves
    either the previous count or the new one.
    """
    path = job_dir / ATTEMPTS_NAME
    previous = read_json(path) if path.is_file() else {}
    history = previous.get("history", []) if previous.get("run_id") == run_id else []
    history.append({"started": utc_now(), "host": socket.gethostname(), "pid": os.getpid()})
    write_json(path, {"run_id": run_id, "attempts": len(history), "history": history})
    return len(history)


def _train_and_evaluate(spec: JobSpec, attempts: int, where: dict[str, Any], started: float,
                        log: Any) -> JobResult:
    from fly64_train.job import train_job

    summary = train_job(spec.train)
    log.info("training finished: %s", json.dumps(summary, sort_keys=True, default=str))
    metrics = _evaluate(spec, summary, log) if spec.evaluation is not None else None
    return JobResult(
        spec.label, "success", attempts, **where, duration_s=_since(started),
        final_loss=summary["final_loss"], best_loss=summary["best_loss"],
        epochs_completed=summary["epochs_completed"], global_step=summary["global_step"],
        resumed_from=summary["resumed_from"], checkpoint_path=summary["checkpoint_path"],
        bundle_path=summary["bundle_path"], bundle_sha256=summary["bundle_sha256"],
        bundle_size_bytes=summary["bundle_size_bytes"], metrics=metrics)


def _evaluate(spec: JobSpec, summary: dict[str, Any], log: Any) -> dict[str, Any] | None:
    """The bundle's scores on the test split; ``None`` (traceback in the log) if scoring fails.

    A scoring failure does not fail the job: its bundle is good, and
    ``fly64-train evaluate`` can score it later.
    """
    from fly64_train.evaluate import evaluate_job

    if spec.train.test_path is None:
        log.info("no test split: not scored")
        return None
    try:
        metrics = evaluate_job(spec.job_dir / summary["bundle_path"], spec.train.test_path, spec.job_dir,
                               spec.evaluation, title=f"{spec.label} (test split)")
    except Exception:  # noqa: BLE001 - see docstring
        log.error("evaluation FAILED (metrics left null):\n%s", traceback.format_exc())
        return None
    log.info("metrics: %s", json.dumps(metrics, sort_keys=True))
    return metrics


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)
