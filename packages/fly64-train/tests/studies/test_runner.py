"""The Phase E runner on a real tiny study (Phase C and D written by their own CLIs)."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest

from fly64_data.contract import sha256_file
from fly64_manifest import validate
from fly64_train.cli import main as train_main
from fly64_train.studies.matrix import build_matrix, filter_jobs
from fly64_train.studies.runner import StudyRunConfig, plan, run_study
from fly64_train.training.torch_options import TorchOptions

TINY_TRAIN = ["--max-epochs", "1", "--n-groups", "8", "--batch-size", "4", "--base-width", "4", "--deterministic",
              "--no-evaluate"]


@pytest.fixture(scope="module")
def study(tiny_study_data) -> Path:
    return tiny_study_data


def _roots(study: Path, artifact: Path) -> list[str]:
    return ["--phase-c-root", str(study / "phase_c"), "--phase-d-root", str(study / "phase_d"),
            "--artifact-root", str(artifact)]


def rerecord(manifest: Path, file: Path) -> None:
    """Record ``file``'s current sha256 and size in the manifest that lists it (as its producer would)."""
    doc = json.loads(manifest.read_text())

    def visit(node):
        if isinstance(node, dict):
            if isinstance(node.get("path"), str) and (manifest.parent / node["path"]).resolve() == file.resolve():
                node["sha256"], node["size_bytes"] = sha256_file(file), file.stat().st_size
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(doc)
    manifest.write_text(json.dumps(doc, indent=2))


def _manifest(artifact: Path) -> dict:
    return validate(artifact / "training_manifest.json", "training_manifest")


@pytest.mark.parametrize(
    "filters, count",
    [({}, 9), ({"doses": [1000.0]}, 3), ({"views": ["dense"]}, 3), ({"gridsizes": [2]}, 6),
     ({"doses": [1e4], "views": ["sparse"], "gridsizes": [2]}, 1), ({"views": ["baseline"], "gridsizes": [2]}, 0)],
)
def test_matrix_and_filters(study, tmp_path, filters, count):
    from fly64_data.design import get_study_design

    assert len(build_matrix(get_study_design())) == 9
    cfg = StudyRunConfig(study / "phase_c", study / "phase_d", tmp_path, **filters)
    runnable, skipped = plan(cfg)
    assert len(runnable) == count and skipped == []
    assert len(filter_jobs(build_matrix(get_study_design()), filters.get("doses"), filters.get("views"),
                           filters.get("gridsizes"))) == count


@pytest.mark.parametrize("accelerator, device", [("auto", "auto"), ("cpu", "cpu"), ("gpu", "auto")])
def test_jobs_are_evaluated_where_they_train(study, tmp_path, accelerator, device):
    """A study forced onto the CPU evaluates on the CPU even on a GPU host; otherwise the GPU when present."""
    from dataclasses import replace

    base = StudyRunConfig(study / "phase_c", study / "phase_d", tmp_path, doses=[1000.0])
    runnable, _ = plan(replace(base, train=replace(base.train, torch=TorchOptions(accelerator=accelerator))))
    assert runnable and {spec.evaluation.device for spec in runnable} == {device}


def test_dry_run_writes_logs_and_both_manifests_and_trains_nothing(study, tmp_path, capsys):
    artifact = tmp_path / "e"
    assert train_main([*_roots(study, artifact), "--dry-run"]) == 0
    manifest = _manifest(artifact)
    assert manifest["dry_run"] is True and len(manifest["jobs"]) == 9
    assert {j["result"]["status"] for j in manifest["jobs"]} == {"dry_run"}
    for job in manifest["jobs"]:
        log = (artifact / job["job_dir"] / job["log_path"]).read_text()
        assert "dry run" in log and job["train_data_path"] in log
    assert not list(artifact.rglob("*.zip")) and not list(artifact.rglob("*.ckpt"))
    validate(artifact / "skip_summary.json", "skip_summary")
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith("(9 jobs, 0 skipped)")


def test_missing_sparse_view_is_skipped_and_recorded_identically(study, tmp_path):
    phase_d = tmp_path / "phase_d"
    shutil.copytree(study / "phase_d", phase_d)
    shutil.rmtree(phase_d / "dose_10000" / "sparse")
    artifact = tmp_path / "e"
    assert train_main(["--phase-c-root", str(study / "phase_c"), "--phase-d-root", str(phase_d),
                       "--artifact-root", str(artifact), "--dry-run"]) == 0
    manifest = _manifest(artifact)
    summary = validate(artifact / "skip_summary.json", "skip_summary")
    assert manifest["skipped_views"] == summary["skipped_views"]
    assert manifest["skipped_count"] == summary["skipped_count"] == 1
    skip = manifest["skipped_views"][0]
    assert (skip["dose"], skip["view"], skip["gridsize"]) == (10000.0, "sparse", 2)
    assert "not found" in skip["reason"] and "sparse" in skip["reason"]
    assert manifest["skip_summary_path"] == "skip_summary.json"
    assert len(manifest["jobs"]) == 8


def test_upsert_keeps_jobs_of_earlier_runs(study, tmp_path):
    artifact = tmp_path / "e"
    assert train_main([*_roots(study, artifact), "--dry-run", "--dose", "1000", "--view", "baseline"]) == 0
    assert train_main([*_roots(study, artifact), "--dry-run", "--dose", "1000", "--view", "dense"]) == 0
    jobs = {(j["dose"], j["view"]) for j in _manifest(artifact)["jobs"]}
    assert jobs == {(1000.0, "baseline"), (1000.0, "dense")}


def test_real_training_through_the_cli(study, tmp_path, capsys):
    artifact = tmp_path / "e"
    assert train_main([*_roots(study, artifact), "--dose", "1000", "--view", "baseline", "dense",
                       *TINY_TRAIN]) == 0
    out = capsys.readouterr().out
    manifest = _manifest(artifact)
    assert [j["view"] for j in manifest["jobs"]] == ["baseline", "dense"]
    for job in manifest["jobs"]:
        result = job["result"]
        assert result["status"] == "success" and result["epochs_completed"] >= 1
        bundle = artifact / job["job_dir"] / result["bundle_path"]
        assert result["bundle_sha256"] == sha256_file(bundle)
        assert result["bundle_size_bytes"] == bundle.stat().st_size
        assert (artifact / job["job_dir"] / result["checkpoint_path"]).is_file()
        line = next(x for x in out.splitlines() if f"view {job['view']} " in x and "bundle" in x)
        match = re.search(r"dose (\S+) view (\S+) gs(\d): bundle (\S+) sha256 ([0-9a-f]{64}) size (\d+) bytes", line)
        assert match and float(match[1]) == job["dose"] and match[2] == job["view"]
        assert Path(match[4]) == bundle
        assert match[5] == result["bundle_sha256"] and int(match[6]) == result["bundle_size_bytes"]
    assert f"{artifact / 'training_manifest.json'} (2 jobs, 0 skipped)" in out.splitlines()[-1]


def test_a_failing_job_is_recorded_and_the_others_still_run(study, tmp_path, capsys):
    phase_d = tmp_path / "phase_d"
    shutil.copytree(study / "phase_d", phase_d)
    broken = phase_d / "dose_1000" / "dense" / "dense_train.npz"
    broken.write_bytes(broken.read_bytes()[:4000])
    rerecord(phase_d / "overlap_manifest.json", broken)  # a bad file its producer recorded, not tampering
    artifact = tmp_path / "e"
    code = train_main(["--phase-c-root", str(study / "phase_c"), "--phase-d-root", str(phase_d),
                       "--artifact-root", str(artifact), "--dose", "1000", "--view", "baseline", "dense",
                       *TINY_TRAIN])
    assert code == 1
    jobs = {j["view"]: j["result"] for j in _manifest(artifact)["jobs"]}
    assert jobs["baseline"]["status"] == "success"
    assert jobs["dense"]["status"] == "failed" and "dense_train.npz" in jobs["dense"]["error"]
    assert "FAILED" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [(["--dose", "500"], "--dose 500 is not in the study design"),
                                           (["--view", "medium"], "--view medium is not in the study design")])
def test_unknown_dose_or_view_is_a_usage_error(study, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        train_main([*_roots(study, tmp_path / "e"), *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "e").exists()


def test_missing_phase_c_file_is_an_error_with_nothing_written(study, tmp_path, capsys):
    phase_c = tmp_path / "phase_c"
    shutil.copytree(study / "phase_c", phase_c)
    (phase_c / "dose_1000" / "patched_test.npz").unlink()
    artifact = tmp_path / "e"
    assert train_main(["--phase-c-root", str(phase_c), "--phase-d-root", str(study / "phase_d"),
                       "--artifact-root", str(artifact), "--dry-run"]) == 1
    err = capsys.readouterr().err.strip()
    assert "patched_test.npz" in err and "Phase C file not found" in err and "\n" not in err
    assert not artifact.exists()


def test_run_study_returns_outcome(study, tmp_path):
    out = io.StringIO()
    cfg = StudyRunConfig(study / "phase_c", study / "phase_d", tmp_path / "e", doses=[1e5], dry_run=True)
    outcome = run_study(cfg, out=out)
    assert outcome.failed == 0 and len(outcome.jobs) == 3
    assert json.loads(outcome.manifest_path.read_text())["filters"]["dose"] == [1e5]


def test_concurrent_runs_into_one_root_keep_every_job(study, tmp_path):
    import subprocess
    import sys

    artifact = tmp_path / "e"
    procs = [subprocess.Popen([sys.executable, "-m", "fly64_train", *_roots(study, artifact), "--dry-run",
                               "--dose", dose], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for dose in ("1000", "10000", "100000")]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    manifest = _manifest(artifact)
    assert len(manifest["jobs"]) == 9
    assert validate(artifact / "skip_summary.json", "skip_summary")["skipped_count"] == 0
    assert not list(artifact.glob(".training_manifest.json.*")), "temporary files left behind"


@pytest.mark.parametrize(("argv", "expected"), [([], "absent"), (["--count-split", "0.5"], 0.5),
                                                (["--count_split", "off"], None), (["--count-split", "0"], None)])
def test_count_split_flag_reaches_the_job_config(argv, expected):
    from fly64_train.cli import build_parser
    from fly64_train.cli_options import train_config_from_args
    from fly64_train.training.config import TrainConfig

    args = build_parser().parse_args(["run", "--phase-c-root", "c", "--phase-d-root", "d", "--artifact-root", "e",
                                      *argv])
    config = train_config_from_args(args, train_path="t", job_dir="j")
    default = TrainConfig(train_path="t", job_dir="j").count_split
    assert config.count_split == (default if expected == "absent" else expected)


def test_an_out_of_range_count_split_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        train_main(["--phase-c-root", "c", "--phase-d-root", "d", "--artifact-root", "e", "--count-split", "1.5"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--count-split" in err and "1.5" in err


# --------------------------------------------------------------------------- executors

TWO_JOBS = ["--dose", "1000", "--view", "baseline", "dense"]


def _jobs(artifact: Path) -> dict[str, dict]:
    return {j["view"]: j["result"] for j in _manifest(artifact)["jobs"]}


def test_dask_workers_give_the_same_jobs_as_in_process(study, tmp_path, capsys):
    local, dask = tmp_path / "local", tmp_path / "dask"
    assert train_main([*_roots(study, local), *TWO_JOBS, *TINY_TRAIN]) == 0
    capsys.readouterr()
    assert train_main([*_roots(study, dask), *TWO_JOBS, *TINY_TRAIN, "--executor", "dask", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    here, there = _jobs(local), _jobs(dask)
    assert set(here) == set(there) == {"baseline", "dense"}
    for view in here:
        assert there[view]["status"] == here[view]["status"] == "success"
        assert there[view]["bundle_sha256"] == here[view]["bundle_sha256"]
        assert there[view]["final_loss"] == here[view]["final_loss"]
        assert there[view]["attempts"] == here[view]["attempts"] == 1
        # One progress line per job, naming the Dask worker that ran it.
        assert re.search(rf"dose 1000 view {view} gs\d: bundle .* \(success, [\d.]+ min, attempt 1, on tcp://", out)
    assert "Dask dashboard: http" in out


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_scheduler_is_one_line_and_nothing_written(study, tmp_path, capsys):
    artifact = tmp_path / "e"
    nowhere = f"tcp://127.0.0.1:{free_port()}"
    assert train_main([*_roots(study, artifact), *TWO_JOBS, "--executor", "dask", "--scheduler", nowhere]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"fly64-train: error: {nowhere}: no Dask scheduler answered") and "\n" not in err
    assert not artifact.exists()


@pytest.mark.parametrize("argv, message", [
    (["--workers", "2"], "need --executor dask"),
    (["--executor", "dask", "--workers", "0"], "--workers"),
    (["--executor", "dask", "--workers", "2", "--scheduler", "tcp://h:1"], "cannot be combined"),
    (["--executor", "ray"], "--executor"),
])
def test_contradictory_execution_flags_are_usage_errors(study, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        train_main([*_roots(study, tmp_path / "e"), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "e").exists()


def _wait_for(predicate, what: str, proc=None, deadline_s: float = 600):
    import time

    stop = time.monotonic() + deadline_s
    while not (value := predicate()):
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}")
        if time.monotonic() > stop:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)
    return value


@pytest.mark.slow
def test_killed_worker_resumes_from_its_checkpoint(study, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from fly64_manifest import read_json

    artifact = tmp_path / "e"
    job_dir = artifact / "dose_1000" / "baseline" / "gs1"
    train = [a for a in TINY_TRAIN if a not in ("--max-epochs", "1")]
    proc = subprocess.Popen([sys.executable, "-m", "fly64_train", "run", *_roots(study, artifact), "--dose", "1000",
                             "--view", "baseline", *train, "--max-epochs", "60", "--executor", "dask",
                             "--workers", "2", "--max-attempts", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The first epoch always improves the monitored loss, so last.ckpt exists once it ends.
        _wait_for((job_dir / "checkpoints" / "last.ckpt").is_file, "the first checkpoint", proc)
        first = read_json(job_dir / "attempts.json")["history"][0]["pid"]
        os.kill(first, signal.SIGKILL)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    [job] = _manifest(artifact)["jobs"]
    result = job["result"]
    assert result["status"] == "success" and result["attempts"] == 2 and result["epochs_completed"] == 60
    history = read_json(job_dir / "attempts.json")["history"]
    assert len(history) == 2 and history[1]["pid"] != first
    # The second attempt continued after epoch 0: it resumed, it did not start over.
    second_log = sorted((job_dir / "logs").glob("version_*/metrics.csv"))[-1]
    assert second_log.parent.name != "version_0" and "\n0," not in second_log.read_text()
    assert "attempt 2" in out


@pytest.mark.slow
def test_cluster_by_address_with_real_scheduler_and_worker_processes(study, tmp_path, capsys):
    import subprocess
    import sys

    dask = str(Path(sys.executable).parent / "dask")
    scheduler_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(scheduler_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        _wait_for(scheduler_file.is_file, "the scheduler file", procs[0], 120)
        procs.append(subprocess.Popen([dask, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1",
                                       "--nworkers", "1", "--no-dashboard"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = json.loads(scheduler_file.read_text())["address"]
        artifact = tmp_path / "e"
        assert train_main([*_roots(study, artifact), *TWO_JOBS, *TINY_TRAIN, "--executor", "dask",
                           "--scheduler", address]) == 0
        assert {r["status"] for r in _jobs(artifact).values()} == {"success"}
        assert train_main([*_roots(study, tmp_path / "f"), "--dose", "1000", "--view", "baseline", *TINY_TRAIN,
                           "--executor", "dask", "--scheduler-file", str(scheduler_file)]) == 0
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    out = capsys.readouterr().out
    assert out.count("(success,") == 3
