"""Failure, interruption and divergence never look like success (issue #20, section 3).

A standing suite: every job ends in a recorded, truthful state (success, failed,
interrupted, diverged), the console says which, and the exit status follows the
convention (1 for a failed job, 128 + signal for a handled signal).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fly64_train.cli import main as train_main

_FAST = ["--max-epochs", "1", "--n-groups", "16", "--batch-size", "8", "--base-width", "4",
         "--accelerator", "cpu", "--deterministic"]


def _run(study: Path, artifact: Path, *extra: str) -> int:
    return train_main(["run", "--phase-c-root", str(study / "phase_c"), "--phase-d-root", str(study / "phase_d"),
                       "--artifact-root", str(artifact), "--dose", "1000", "--view", "baseline", *_FAST, *extra])


def _result(artifact: Path) -> dict:
    (job,) = json.loads((artifact / "training_manifest.json").read_text())["jobs"]
    return job["result"]


def test_a_failed_evaluation_fails_the_job_and_the_exit_status(tiny_study_data, tmp_path, capsys):
    artifact = tmp_path / "e"
    # A folder where evaluation must write its product file: evaluation fails after training.
    (artifact / "dose_1000" / "baseline" / "gs1" / "reconstruction.h5").mkdir(parents=True)
    assert _run(tiny_study_data, artifact) == 1
    out = capsys.readouterr().out
    assert "FAILED: evaluation failed" in out and "(success" not in out
    result = _result(artifact)
    assert result["status"] == "failed" and result["error"].startswith("evaluation failed")
    assert result["bundle_sha256"] is not None  # the trained bundle stays recorded


def test_a_huge_learning_rate_is_recorded_as_diverged(tiny_study_data, tmp_path, capsys):
    artifact = tmp_path / "e"
    assert _run(tiny_study_data, artifact, "--lr", "1e30") == 1
    out = capsys.readouterr().out
    assert "DIVERGED" in out and "(success" not in out
    result = _result(artifact)
    assert result["status"] == "diverged" and "zero amplitude" in result["error"]


def test_max_time_bounds_the_job_and_an_untrained_model_is_never_exported(tiny_study_data, tmp_path, capsys):
    artifact = tmp_path / "e"
    started = time.monotonic()
    # 200,000 groups of 8: thousands of steps per epoch, far beyond a 2-second budget.
    assert _run(tiny_study_data, artifact, "--n-groups", "200000", "--max-time", "00:00:00:02",
                "--max-epochs", "3", "--no-evaluate") == 1
    elapsed = time.monotonic() - started
    out = capsys.readouterr().out
    assert "INTERRUPTED" in out and "--max-time" in out
    result = _result(artifact)
    assert result["status"] == "interrupted" and result["epochs_completed"] < 3
    assert result["bundle_path"] is None
    assert not (artifact / "dose_1000" / "baseline" / "gs1" / "wts.h5.zip").exists()
    assert elapsed < 60, elapsed  # loose: today's Lightning timer let validation of 10,000 groups run on


def test_train_one_with_max_time_exports_nothing_untrained(tiny_npz, tmp_path, capsys):
    job = tmp_path / "job"
    code = train_main(["train-one", "--train", str(tiny_npz), "--job-dir", str(job), "--n-groups", "200000",
                       "--batch-size", "8", "--base-width", "4", "--max-time", "00:00:00:01", "--no-progress",
                       "--accelerator", "cpu"])
    assert code == 1
    err = capsys.readouterr().err
    assert "interrupted" in err and "nothing exported" in err
    assert not (job / "wts.h5.zip").exists()


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{path} never appeared: {proc.communicate()}")
        time.sleep(0.2)


SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT")] + [
    pytest.param(sig, id=sig.name, marks=pytest.mark.slow) for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1)]


@pytest.mark.parametrize("sig", SIGNALS)
def test_a_signal_records_the_job_as_interrupted_and_a_rerun_resumes_it(tiny_study_data, tmp_path, sig):
    artifact = tmp_path / "e"
    job = artifact / "dose_1000" / "baseline" / "gs1"
    argv = [sys.executable, "-m", "fly64_train", "run", "--phase-c-root", str(tiny_study_data / "phase_c"),
            "--phase-d-root", str(tiny_study_data / "phase_d"), "--artifact-root", str(artifact), "--dose", "1000",
            "--view", "baseline", "--n-groups", "64", "--batch-size", "8", "--base-width", "4",
            "--accelerator", "cpu", "--no-evaluate", "--max-epochs", "10000", "--max-time", "00:00:05:00"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    _wait_for(job / "checkpoints" / "last.ckpt", proc)  # one epoch finished
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, (out, err)
    lines = [line for line in err.strip().splitlines() if line.startswith("fly64-train:")]
    assert lines and f"interrupted by {sig.name}" in lines[-1], err
    assert "Traceback" not in err, err
    result = _result(artifact)
    assert result["status"] == "interrupted" and sig.name in result["error"]
    assert (job / "checkpoints" / "last.ckpt").is_file()
    # The rerun resumes from the checkpoint instead of starting over, asked for more epochs than the
    # interrupted run had finished (on an idle machine the signal may land after more than one epoch).
    import torch

    done = torch.load(job / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")["epoch"]
    assert train_main(["run", "--phase-c-root", str(tiny_study_data / "phase_c"),
                       "--phase-d-root", str(tiny_study_data / "phase_d"), "--artifact-root", str(artifact),
                       "--dose", "1000", "--view", "baseline", "--n-groups", "64", "--batch-size", "8",
                       "--base-width", "4", "--accelerator", "cpu", "--no-evaluate",
                       "--max-epochs", str(done + 2)]) == 0
    result = _result(artifact)
    assert result["status"] == "success" and result["epochs_completed"] >= 1
    assert "resumed_from='checkpoints/last.ckpt'" in (job / "train.log").read_text()


@pytest.fixture(scope="module")
def two_jobs(tiny_study_data, tmp_path_factory) -> Path:
    """A Phase E root with two evaluated jobs (dose 1000 baseline and dose 10000 baseline); read-only."""
    root = tmp_path_factory.mktemp("two_jobs")
    for name in ("phase_c", "phase_d"):  # beside the root, so that a copy with the same links still resolves
        (root / name).symlink_to(tiny_study_data / name)
    artifact = root / "e"
    assert train_main(["run", "--phase-c-root", str(root / "phase_c"),
                       "--phase-d-root", str(root / "phase_d"), "--artifact-root", str(artifact),
                       "--dose", "1000", "10000", "--view", "baseline", *_FAST]) == 0
    return artifact


def _copy(two_jobs: Path, tiny_study_data: Path, tmp_path: Path) -> Path:
    import shutil

    artifact = tmp_path / "e"
    shutil.copytree(two_jobs, artifact)
    for name in ("phase_c", "phase_d"):
        (tmp_path / name).symlink_to(tiny_study_data / name)
    return artifact


def test_evaluate_goes_on_past_a_bad_job_and_names_it(two_jobs, tiny_study_data, tmp_path, capsys):
    artifact = _copy(two_jobs, tiny_study_data, tmp_path)
    bad = artifact / "dose_1000" / "baseline" / "gs1" / "wts.h5.zip"
    bad.write_bytes(bad.read_bytes() + b"x")  # not the recorded bytes: refused
    good_npz = artifact / "dose_10000" / "baseline" / "gs1" / "reconstruction.npz"
    good_npz.unlink()
    assert train_main(["evaluate", "--artifact-root", str(artifact)]) == 1
    captured = capsys.readouterr()
    assert "dose 1000 baseline gs1: FAILED" in captured.out and "dose 10000 baseline gs1: amplitude" in captured.out
    err = captured.err.strip()
    assert "\n" not in err and "dose 1000 baseline gs1" in err and "1 of 2" in err
    assert good_npz.is_file()  # the good job was evaluated although the bad one came first


def test_report_goes_on_past_an_unreadable_reconstruction_and_names_it(two_jobs, tiny_study_data, tmp_path,
                                                                        capsys):
    artifact = _copy(two_jobs, tiny_study_data, tmp_path)
    bad = artifact / "dose_1000" / "baseline" / "gs1" / "reconstruction.npz"
    bad.write_bytes(b"PK\x03\x04 not a zip")
    out = tmp_path / "report"
    assert train_main(["report", "--artifact-root", str(artifact), "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "FAILED" in err
    report = (out / "report.md").read_text()
    assert str(bad) in report  # the note says which job's figure is missing
    assert (out / "reconstructions.png").is_file() and (out / "metrics.csv").is_file()


@pytest.mark.slow  # a local Dask cluster's start-up and shutdown
def test_ctrl_c_under_dask_is_one_line_exit_130_and_the_job_is_interrupted(tiny_study_data, tmp_path):
    artifact = tmp_path / "e"
    job = artifact / "dose_1000" / "baseline" / "gs1"
    argv = [sys.executable, "-m", "fly64_train", "run", "--phase-c-root", str(tiny_study_data / "phase_c"),
            "--phase-d-root", str(tiny_study_data / "phase_d"), "--artifact-root", str(artifact), "--dose", "1000",
            "--view", "baseline", "--n-groups", "64", "--batch-size", "8", "--base-width", "4",
            "--accelerator", "cpu", "--no-evaluate", "--max-epochs", "10000", "--max-time", "00:00:05:00",
            "--executor", "dask", "--workers", "1"]
    # Its own process group, as a terminal's foreground job: Ctrl-C reaches the client and its workers.
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    _wait_for(job / "checkpoints" / "last.ckpt", proc, timeout=240)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    ours = [line for line in err.splitlines() if line.startswith("fly64-train:")]
    assert len(ours) == 1 and "interrupted by SIGINT" in ours[0], err
    assert _result(artifact)["status"] == "interrupted"
