"""The executor: worker placement (pure functions), and real Dask clusters (a job lost, a cluster by address)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from dataclasses import replace

import pytest

from fly64_manifest import read_json
from fly64_train.evaluation.evaluate import EvaluationConfig
from fly64_train.studies.dask_executor import DaskExecutor
from fly64_train.studies.execute import ATTEMPTS_NAME, run_job
from fly64_train.studies.executor import ExecutorError, JobLost, open_executor
from fly64_train.studies.executor_config import ExecutorConfig
from fly64_train.studies.job_record import JobRecord
from fly64_train.studies.job_spec import JobSpec
from fly64_train.studies.matrix import Job
from fly64_train.studies.worker_placement import WorkerPlacement, auto_workers, place_workers

#: Guards a wait that ends in seconds on an idle machine, so a broken run fails instead of hanging the
#: suite; generous because a worker's first task imports torch, slow on a loaded 2-core machine.
DEADLINE_S = 600


def label(spec: JobSpec) -> str:
    return spec.job.label()


def spec_of(view: str, train, run_id: str) -> JobSpec:
    """A planned job of the real JobSpec type, not evaluated (the tiny NPZ has no test split of its own)."""
    return JobSpec(job=Job(1000.0, view, 1), train=replace(train, test_path=str(train.train_path)),
                   evaluation=EvaluationConfig(), evaluate=False, run_id=run_id)


@pytest.fixture(scope="module")
def dask_executor():
    # cores=2: one BLAS/torch thread per worker, as in this test process.
    with DaskExecutor(ExecutorConfig(kind="dask", workers=2, max_attempts=2, gpus=(), cores=2)) as executor:
        yield executor


def wait_for(predicate, what: str):
    stop = time.monotonic() + DEADLINE_S
    while not (value := predicate()):
        if time.monotonic() > stop:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)
    return value


@pytest.mark.slow
def test_job_whose_workers_keep_dying_is_lost(tmp_path, tiny_npz, make_config, dask_executor):
    spec = spec_of("doomed", make_config(tiny_npz, tmp_path / "doomed", max_epochs=200), "r3")
    outcomes = dask_executor.run(run_job, [spec], label)
    attempts_file = spec.job_dir / ATTEMPTS_NAME
    for attempt in (1, 2):  # max_attempts=2: the second death is the last one allowed
        record = wait_for(lambda a=attempt: attempts_file.is_file() and
                          (r := read_json(attempts_file))["attempts"] == a and r, f"attempt {attempt}")
        os.kill(record["history"][-1]["pid"], signal.SIGKILL)
    [(_, outcome)] = list(outcomes)
    assert isinstance(outcome, JobLost)
    assert (outcome.label, outcome.attempts) == (label(spec), 2) and "KilledWorker" in outcome.reason


@pytest.mark.slow
def test_cluster_by_address_leaves_the_cluster_up(tmp_path, tiny_npz, make_config, dask_executor):
    # The module's cluster reached only through its scheduler's address (the CLI test with real
    # `dask scheduler` / `dask worker` processes is in test_runner.py).
    address = dask_executor.client.scheduler.address
    spec = spec_of("remote", make_config(tiny_npz, tmp_path / "remote", max_epochs=1), "r4")
    with open_executor(ExecutorConfig(kind="dask", scheduler=address), out=sys.stdout) as executor:
        assert executor.dashboard_link is not None
        [(_, rec)] = list(executor.run(run_job, [spec], label))
    assert isinstance(rec, JobRecord) and rec.result.status == "success" and rec.result.attempts == 1
    assert rec.result.ran_on in dask_executor.client.scheduler_info()["workers"]
    assert dask_executor.client.run(os.getpid)  # closing the by-address client left the cluster up


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_nothing_listening_is_one_line(tmp_path):
    nowhere = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(ExecutorError) as err:
        open_executor(ExecutorConfig(kind="dask", scheduler=nowhere, connect_timeout_s=1))
    assert str(err.value).startswith(f"{nowhere}: no Dask scheduler answered within 1 s")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("workers", "gpus", "cores", "expected_gpus", "threads"), [
    ("auto", (), 2, [None], 2),                              # CPU-only node: one worker, every core
    (None, (), 16, [None], 16),                              # no --workers means auto
    (3, (), 2, [None, None, None], 1),                       # more workers than cores: one thread each
    ("auto", ("0",), 16, ["0", "0", "0"], 5),                # one GPU: JOBS_PER_GPU jobs share it
    ("auto", ("0", "1"), 16, ["0", "1", "0", "1", "0", "1"], 2),
    (2, ("0", "3"), 16, ["0", "3"], 8),                      # one job per GPU on a multi-GPU node
    (4, ("0", "1"), 16, ["0", "1", "0", "1"], 4),            # spread evenly over the GPUs
])
def test_worker_placement(workers, gpus, cores, expected_gpus, threads):
    placed = place_workers(workers, gpus, cores, jobs_per_gpu=3)
    assert [w.gpu for w in placed] == expected_gpus
    assert [w.name for w in placed] == [f"worker-{i}" for i in range(len(expected_gpus))]
    assert all(w.threads == threads and w.env["OMP_NUM_THREADS"] == str(threads) for w in placed)
    for w in placed:
        assert (w.env.get("CUDA_VISIBLE_DEVICES"), w.resources) == ((w.gpu, {"GPU": 1}) if w.gpu else (None, None))


def test_auto_workers_and_the_per_gpu_limit():
    assert (auto_workers(0), auto_workers(1, 3), auto_workers(8, 3)) == (1, 3, 24)
    with pytest.raises(ValueError, match="at most 3 workers share one GPU"):
        place_workers(7, ("0", "1"), 16, jobs_per_gpu=3)
    assert WorkerPlacement("w", None, 1).resources is None


@pytest.mark.parametrize(("config", "message"), [
    (ExecutorConfig(kind="ray"), "executor must be one of"),
    (ExecutorConfig(kind="local", workers=2), "need --executor dask"),
    (ExecutorConfig(kind="dask", scheduler="tcp://h:1", workers=2), "cannot be combined"),
    (ExecutorConfig(kind="dask", max_attempts=0), "max_attempts"),
    (ExecutorConfig(kind="dask", workers=7, gpus=("0", "1")), "at most 3 workers share one GPU"),
    (ExecutorConfig(kind="dask", workers="many"), "a number or 'auto'"),
])
def test_config_check_refuses_contradictions(config, message):
    with pytest.raises(ValueError, match=message):
        config.check()


def test_without_dask_the_dask_executor_is_one_line_naming_the_extra(monkeypatch):
    # As in a torch-only install (fly64-train[torch]): importing distributed fails; nothing starts.
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ExecutorError, match=r"needs Dask, which is not installed .*install fly64-train\[dask\]"):
        open_executor(ExecutorConfig(kind="dask", workers=1, gpus=(), cores=1))
