"""Executors with real Dask: a local cluster of worker processes, a killed worker, a cluster by address."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from fly64_manifest import read_json
from fly64_train.study.executor import (
    DaskExecutor,
    ExecutorConfig,
    ExecutorError,
    JobLost,
    LocalExecutor,
    open_executor,
    worker_specs,
)
from fly64_train.study.run_job import ATTEMPTS_NAME, JobResult, JobSpec, run_job

#: Guards a wait that ends in seconds on an idle machine, so a broken run fails instead of hanging the
#: suite; generous because a worker's first task imports torch, slow on a loaded 2-core machine.
DEADLINE_S = 600


def label(spec: JobSpec) -> str:
    return spec.label


def specs(root: Path, tiny_npz: Path, make_config, run_id: str, **train) -> list[JobSpec]:
    """Two tiny trainable jobs and one whose data does not exist."""
    return [JobSpec("tiny a", make_config(tiny_npz, root / "a", **train), run_id),
            JobSpec("tiny b", make_config(tiny_npz, root / "b", seed=3, **train), run_id),
            JobSpec("missing", make_config(root / "nope.npz", root / "missing", **train), run_id)]


@pytest.fixture(scope="module")
def dask_executor():
    # cores=2: one BLAS/torch thread per worker, as in this test process, so losses compare exactly.
    with DaskExecutor(ExecutorConfig(kind="dask", workers=2, max_attempts=2, gpus=(), cores=2)) as executor:
        yield executor


def wait_for(predicate, what: str):
    stop = time.monotonic() + DEADLINE_S
    while not (value := predicate()):
        if time.monotonic() > stop:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)
    return value


def test_dask_gives_the_same_results_as_local(tmp_path, tiny_npz, make_config, dask_executor):
    with LocalExecutor() as local:
        here = {item.label: out for item, out in local.run(run_job, specs(tmp_path / "local", tiny_npz,
                                                                          make_config, "r1"), label)}
    there = {item.label: out for item, out in dask_executor.run(run_job, specs(tmp_path / "dask", tiny_npz,
                                                                               make_config, "r1"), label)}
    assert set(here) == set(there) == {"tiny a", "tiny b", "missing"}
    for name in here:
        assert isinstance(there[name], JobResult)
        assert (there[name].status, there[name].attempts) == (here[name].status, 1)
        assert there[name].final_loss == here[name].final_loss
        assert there[name].bundle_sha256 == here[name].bundle_sha256
    assert here["tiny a"].status == "success" and here["tiny a"].final_loss is not None
    # A job failing for its own reason ran once and says why, in one line.
    assert here["missing"].status == "failed" and "nope.npz" in there["missing"].error
    assert "\n" not in there["missing"].error
    assert there["tiny a"].pid != os.getpid() and here["tiny a"].pid == os.getpid()


def test_killed_worker_job_resumes_from_its_checkpoint(tmp_path, tiny_npz, make_config, dask_executor):
    spec = JobSpec("long", make_config(tiny_npz, tmp_path / "long", max_epochs=16), "r2")
    outcomes = dask_executor.run(run_job, [spec], label)
    # The first epoch always improves the monitored loss, so last.ckpt exists once it ends.
    wait_for((spec.job_dir / "checkpoints" / "last.ckpt").is_file, "the first checkpoint")
    client = dask_executor.client
    worker = wait_for(lambda: next((w for w, keys in client.processing().items()
                                    if any(str(k).startswith("long [") for k in keys)), None), "the task's worker")
    os.kill(client.run(os.getpid)[worker], signal.SIGKILL)

    [(_, result)] = list(outcomes)
    assert isinstance(result, JobResult), result
    assert result.status == "success" and result.attempts == 2
    assert result.resumed_from == "checkpoints/last.ckpt" and result.epochs_completed == 16
    history = read_json(spec.job_dir / ATTEMPTS_NAME)["history"]
    assert len(history) == 2 and history[0]["pid"] != history[1]["pid"]
    # The second attempt's log starts after epoch 0: the job continued, it did not start over.
    second_log = sorted((spec.job_dir / "logs").glob("version_*/metrics.csv"))[-1]
    assert second_log.parent.name != "version_0"
    assert "\n0," not in second_log.read_text()


def test_job_whose_workers_keep_dying_is_lost(tmp_path, tiny_npz, make_config, dask_executor):
    spec = JobSpec("doomed", make_config(tiny_npz, tmp_path / "doomed", max_epochs=50), "r3")
    outcomes = dask_executor.run(run_job, [spec], label)
    attempts_file = spec.job_dir / ATTEMPTS_NAME
    for attempt in (1, 2):  # max_attempts=2: the second death is the last one allowed
        record = wait_for(lambda a=attempt: attempts_file.is_file() and
                          (r := read_json(attempts_file))["attempts"] == a and r, f"attempt {attempt}")
        os.kill(record["history"][-1]["pid"], signal.SIGKILL)
    [(_, outcome)] = list(outcomes)
    assert isinstance(outcome, JobLost)
    assert (outcome.label, outcome.attempts) == ("doomed", 2) and "KilledWorker" in outcome.reason


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cluster_by_address_then_nothing_listening(tmp_path, tiny_npz, make_config, dask_executor):
    # The module's cluster, reached only through its scheduler's address, stands in for one that
    # dask-jobqueue or `dask scheduler` + `dask worker` started elsewhere (its workers are warm already).
    address = dask_executor.client.scheduler.address
    spec = JobSpec("remote", make_config(tiny_npz, tmp_path / "remote", max_epochs=1), "r4")
    with open_executor(ExecutorConfig(kind="dask", scheduler=address), out=sys.stdout) as executor:
        assert executor.dashboard_link is not None
        [(_, result)] = list(executor.run(run_job, [spec], label))
    assert result.status == "success" and result.pid != os.getpid()
    assert dask_executor.client.run(os.getpid)  # closing the by-address client left the cluster up

    out = tmp_path / "unreachable"
    nowhere = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(ExecutorError) as err:
        open_executor(ExecutorConfig(kind="dask", scheduler=nowhere, connect_timeout_s=1))
    assert str(err.value).startswith(f"{nowhere}: no Dask scheduler answered within 1 s")
    assert "\n" not in str(err.value)
    assert not out.exists()


def test_each_local_worker_gets_its_own_gpu_and_a_share_of_the_cores():
    specs_ = worker_specs(ExecutorConfig(kind="dask", workers=2, gpus=("0", "3"), cores=16))
    assert [s["env"]["CUDA_VISIBLE_DEVICES"] for s in specs_.values()] == ["0", "3"]
    assert all(s["resources"] == {"GPU": 1} and s["env"]["OMP_NUM_THREADS"] == "8" for s in specs_.values())
    cpu = worker_specs(ExecutorConfig(kind="dask", workers=3, gpus=(), cores=2))
    assert len(cpu) == 3 and all(s["resources"] is None and "CUDA_VISIBLE_DEVICES" not in s["env"]
                                 and s["env"]["OMP_NUM_THREADS"] == "1" for s in cpu.values())


@pytest.mark.parametrize(("config", "message"), [
    (ExecutorConfig(kind="ray"), "executor must be one of"),
    (ExecutorConfig(kind="local", workers=2), "need --executor dask"),
    (ExecutorConfig(kind="dask", scheduler="tcp://h:1", workers=2), "cannot be combined"),
    (ExecutorConfig(kind="dask", max_attempts=0), "max_attempts"),
    (ExecutorConfig(kind="dask", workers=3, gpus=("0", "1")), "each worker needs a GPU"),
])
def test_config_check_refuses_contradictions(config, message):
    with pytest.raises(ValueError, match=message):
        config.check()
