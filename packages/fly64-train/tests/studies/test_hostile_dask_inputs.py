"""Standing hostile suite for the Dask connection input (issue 20, section 5).

A scheduler file lives on a shared file system where anything may sit under its
name; a scheduler address is typed by hand; a worker count may be a typo. Each bad
value is one line naming the flag or the file, before anything is read or
written: no hang on a FIFO, no traceback from Dask, no half-made client that
prints its own traceback on the way out, no flag silently ignored, and no more
local workers than the node can run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fly64_train.cli import main as train_main
from fly64_train.studies import dask_executor, executor, executor_config, worker_placement


def _run_args(tmp_path: Path) -> list[str]:
    # The execution flags are checked before the roots are looked at: none of these need to exist.
    return ["--phase-c-root", str(tmp_path / "c"), "--phase-d-root", str(tmp_path / "d"),
            "--artifact-root", str(tmp_path / "e")]


def _usage_line(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        train_main(argv)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(("content", "complaint"), [
    (b"garbage", "not valid json"),
    (b"[]", "holds no scheduler address"),
    (b"{}", "holds no scheduler address"),
    (b'{"address": 5}', "holds no scheduler address"),
    (b'{"address": ""}', "holds no scheduler address"),
    (b'{"address": "tcp://a:1", "address": "tcp://b:2"}', "duplicate"),
    (b"\xff\xfe", "not valid json"),
])
def test_a_scheduler_file_without_a_string_address_is_one_line_naming_it(tmp_path, capsys, content, complaint):
    path = tmp_path / "scheduler.json"
    path.write_bytes(content)
    err = _usage_line(capsys, [*_run_args(tmp_path), "--executor", "dask", "--scheduler-file", str(path)])
    assert f"--scheduler-file {path}" in err and complaint in err.lower(), err
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("kind", ["folder", "missing", "oversized"])
def test_a_scheduler_file_that_is_no_small_regular_file_is_refused(tmp_path, capsys, kind):
    path = tmp_path / "scheduler.json"
    if kind == "folder":
        path.mkdir()
    elif kind == "oversized":
        path.write_bytes(b'{"address": "tcp://h:1", "pad": "' + b"x" * (2 << 20) + b'"}')
    err = _usage_line(capsys, [*_run_args(tmp_path), "--executor", "dask", "--scheduler-file", str(path)])
    assert f"--scheduler-file {path}" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_scheduler_file_that_is_a_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "scheduler.json"
    os.mkfifo(fifo)  # nobody ever writes to it: reading it would block for ever
    run = subprocess.run([sys.executable, "-m", "fly64_train", "run", *_run_args(tmp_path), "--executor", "dask",
                          "--scheduler-file", str(fifo)], capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 2 and f"--scheduler-file {fifo}: not a regular file" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_a_failed_connection_is_one_line_without_dask_tracebacks(tiny_study_data, tmp_path):
    # An address Dask cannot parse leaves a half-made Client whose __del__ used to wait 2 s and print a
    # traceback after our own error line; a subprocess shows what the user's terminal shows.
    roots = ["--phase-c-root", str(tiny_study_data / "phase_c"), "--phase-d-root", str(tiny_study_data / "phase_d"),
             "--artifact-root", str(tmp_path / "e"), "--dose", "1000", "--view", "baseline"]
    run = subprocess.run([sys.executable, "-m", "fly64_train", "run", *roots, "--executor", "dask",
                          "--scheduler", "inproc://nowhere"], capture_output=True, text=True, timeout=120,
                         check=False)
    lines = run.stderr.strip().splitlines()
    assert run.returncode != 0 and len(lines) == 1, run.stderr
    assert "inproc://nowhere" in lines[0] and "Traceback" not in run.stderr
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--max-attempts", "2"], "--max-attempts needs --executor dask"),
    (["--executor", "dask", "--scheduler", "tcp://h:1", "--max-attempts", "2"], "running scheduler keeps"),
])
def test_max_attempts_is_refused_where_it_would_be_ignored(tmp_path, capsys, argv, message):
    err = _usage_line(capsys, [*_run_args(tmp_path), *argv])
    assert message in err


def test_workers_beyond_what_the_node_can_run_are_refused(tmp_path, capsys):
    too_many = worker_placement.node_worker_cap(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                               else os.cpu_count() or 1) + 1
    err = _usage_line(capsys, [*_run_args(tmp_path), "--executor", "dask", "--workers", str(too_many)])
    assert f"--workers {too_many}: this node can run at most" in err and "cores" in err
    assert not (tmp_path / "e").exists()


def test_the_worker_cap_follows_cores_and_memory():
    assert len(worker_placement.place_workers(8, (), 2)) == 8  # 4 per core: a few more than cores still helps
    with pytest.raises(ValueError, match=r"--workers 1000: this node can run at most 8 local workers \(2 cores"):
        worker_placement.place_workers(1000, (), 2)
    with pytest.raises(ValueError, match=r"at most 2 local workers .* 4 GiB memory at 2 GiB per worker"):
        worker_placement.place_workers(3, (), 16, memory_bytes=4 << 30)
    # auto is clamped to the node, never refused
    assert len(worker_placement.place_workers("auto", ("0",), 16, jobs_per_gpu=3, memory_bytes=4 << 30)) == 2
    assert executor_config.ExecutorConfig(kind="dask", workers=2, max_attempts=2).check() is None


def test_a_peer_that_accepts_and_never_answers_is_refused_within_a_deadline():
    # Dask bounds the TCP connect, not its handshake: before, this waited for ever.
    import socket
    import threading
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    accepted = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    started = time.monotonic()
    try:
        with pytest.raises(executor.ExecutorError, match=rf"^{address}: no Dask scheduler answered within 3 s"):
            dask_executor.DaskExecutor(
                executor_config.ExecutorConfig(kind="dask", scheduler=address, connect_timeout_s=1))
        assert time.monotonic() - started < 30
    finally:
        stop.set()
        acceptor.join()
        for conn in accepted:
            conn.close()  # the abandoned connect thread then fails and ends
        server.close()
