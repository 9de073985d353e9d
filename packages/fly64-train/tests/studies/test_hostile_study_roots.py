"""Hostile artifact roots (issue 20, sections 1 and 2): links, shared roots, a second backend, dry runs.

A colleague with write access to a shared study folder plants a link, points two
phases at one folder, or runs a dry run over a finished study. Each test builds
its own bad root; nothing outside the root is touched and no recorded result is lost.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fly64_manifest.cli import main as manifest_main
from fly64_train.cli import main as train_main

JOB = Path("dose_1000") / "baseline" / "gs1"


@pytest.fixture()
def roots(tiny_study_data, tmp_path):
    phase_c, phase_d = tmp_path / "phase_c", tmp_path / "phase_d"
    shutil.copytree(tiny_study_data / "phase_c", phase_c)
    shutil.copytree(tiny_study_data / "phase_d", phase_d)
    return phase_c, phase_d, tmp_path / "phase_e"


def _run(phase_c, phase_d, artifact, *extra: str) -> int:
    return train_main(["run", "--phase-c-root", str(phase_c), "--phase-d-root", str(phase_d),
                       "--artifact-root", str(artifact), "--dose", "1000", "--view", "baseline",
                       "--max-epochs", "1", "--n-groups", "8", "--batch-size", "4", "--base-width", "4",
                       "--no-evaluate", "--accelerator", "cpu", *extra])


def _usage_exit(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as info:
        _run(*argv)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2, err
    assert "\n" not in err, err
    return err


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("fly64-train: error: ") and "\n" not in err, err
    return err


def _untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["thesis.txt"]
    assert (outside / "thesis.txt").read_text() == "years of work"


@pytest.mark.parametrize("planted", [".training_manifest.lock", str(JOB / ".job.lock"), str(JOB / "train.log")])
def test_a_lock_or_log_link_is_refused_and_its_target_untouched(roots, outside, capsys, planted):
    phase_c, phase_d, artifact = roots
    (artifact / planted).parent.mkdir(parents=True, exist_ok=True)
    (artifact / planted).symlink_to(outside / "thesis.txt")
    assert _run(phase_c, phase_d, artifact, "--dry-run") == 1
    err = _one_line(capsys)
    assert str(artifact / planted) in err and "symbolic link" in err
    _untouched(outside)
    assert not (artifact / "training_manifest.json").exists()


@pytest.mark.parametrize("planted", [str(JOB), str(JOB / "checkpoints"), str(JOB / "logs"), "dose_1000"])
def test_a_job_folder_link_is_refused_and_nothing_is_written_outside(roots, outside, capsys, planted):
    phase_c, phase_d, artifact = roots
    (artifact / planted).parent.mkdir(parents=True, exist_ok=True)
    (artifact / planted).symlink_to(outside, target_is_directory=True)
    assert _run(phase_c, phase_d, artifact) == 1
    err = _one_line(capsys)
    assert str(artifact / planted) in err and "symbolic link" in err
    _untouched(outside)


@pytest.mark.parametrize("which", ["phase_c", "phase_c/sub", "phase_d"])
def test_an_artifact_root_equal_to_or_inside_an_input_root_is_refused(roots, capsys, which):
    phase_c, phase_d, _ = roots
    artifact = phase_c.parent / which
    before = sorted(p.relative_to(phase_c.parent) for p in phase_c.parent.rglob("*"))
    assert _run(phase_c, phase_d, artifact, "--dry-run") == 1
    err = _one_line(capsys)
    assert "--artifact-root" in err and "input root" in err
    assert sorted(p.relative_to(phase_c.parent) for p in phase_c.parent.rglob("*")) == before


def test_a_second_backend_in_one_root_is_refused_with_a_hint(roots, capsys):
    phase_c, phase_d, artifact = roots
    assert _run(phase_c, phase_d, artifact, "--dry-run") == 0
    manifest = (artifact / "training_manifest.json").read_bytes()
    capsys.readouterr()
    err = _usage_exit(capsys, phase_c, phase_d, artifact, "--dry-run", "--backend", "tensorflow")
    assert "holds a torch study" in err and "another --artifact-root" in err
    assert (artifact / "training_manifest.json").read_bytes() == manifest


def test_a_root_written_with_the_old_pytorch_spelling_takes_a_torch_run_and_is_respelled(roots):
    # Training manifests before fly64-train 0.4 spelled torch "pytorch": such a root is still a torch root.
    phase_c, phase_d, artifact = roots
    assert _run(phase_c, phase_d, artifact, "--dry-run") == 0
    path = artifact / "training_manifest.json"
    doc = json.loads(path.read_text())
    doc["backend"] = "pytorch"
    for job in doc["jobs"]:
        job["backend"] = "pytorch"
    path.write_text(json.dumps(doc))
    assert _run(phase_c, phase_d, artifact, "--dry-run") == 0
    doc = json.loads(path.read_text())
    assert doc["backend"] == "torch" and {j["backend"] for j in doc["jobs"]} == {"torch"}


@pytest.fixture()
def finished(roots):
    """A root with one trained job (one epoch, seconds)."""
    phase_c, phase_d, artifact = roots
    assert _run(phase_c, phase_d, artifact) == 0
    return roots


def _job(artifact: Path) -> dict:
    return json.loads((artifact / "training_manifest.json").read_text())["jobs"][0]


def test_a_dry_run_never_writes_over_a_recorded_result(finished, capsys):
    phase_c, phase_d, artifact = finished
    before = _job(artifact)
    assert before["result"]["status"] == "success" and before["result"]["bundle_sha256"]
    assert _run(phase_c, phase_d, artifact, "--dry-run") == 0
    assert _job(artifact)["result"] == before["result"]
    capsys.readouterr()
    assert manifest_main(["verify", str(artifact)]) == 0


def test_verify_catches_a_manifest_whose_recorded_result_was_lost(finished, tmp_path, capsys):
    # What a dry run did before this fix: the job's entry is the dry run's plan, its folder holds the bundle.
    phase_c, phase_d, artifact = finished
    assert _run(phase_c, phase_d, tmp_path / "plan", "--dry-run") == 0
    path = artifact / "training_manifest.json"
    doc = json.loads(path.read_text())
    doc["jobs"][0] = _job(tmp_path / "plan")
    path.write_text(json.dumps(doc))
    capsys.readouterr()
    assert manifest_main(["verify", str(artifact)]) == 1
    out = capsys.readouterr().out
    assert "dry run" in out and "wts.h5.zip" in out, out


def test_a_run_resuming_a_checkpoint_of_other_settings_exits_2(finished, capsys):
    phase_c, phase_d, artifact = finished
    capsys.readouterr()
    err = _usage_exit(capsys, phase_c, phase_d, artifact, "--lr", "0.5", "--max-epochs", "2")
    assert "this job folder holds a checkpoint of other settings" in err and "use --no-resume" in err


def test_a_view_name_that_is_a_path_is_refused_by_the_schema_and_the_run(roots, tmp_path, capsys):
    phase_c, phase_d, artifact = roots
    path = phase_d / "overlap_manifest.json"
    doc = json.loads(path.read_text())
    evil = dict(next(v for v in doc["views"] if v["status"] == "ok" and v["dose"] == 1000), view="../../outside")
    doc["views"].append(evil)
    path.write_text(json.dumps(doc))
    assert manifest_main(["validate", str(path)]) == 1
    assert "view" in capsys.readouterr().err
    assert _run(phase_c, phase_d, artifact, "--view", "dense", "--dry-run") == 1
    err = _one_line(capsys)
    assert "overlap_manifest.json" in err and "../../outside" in err, err
    assert not (tmp_path / "outside").exists() and not (artifact.parent / "outside").exists()


def test_evaluate_refuses_a_test_split_swapped_for_another_file_of_its_dose(finished, capsys):
    phase_c, _, artifact = finished
    swapped = phase_c / "dose_1000" / "patched_test.npz"
    shutil.copyfile(phase_c / "dose_1000" / "patched_train.npz", swapped)  # valid, same dose, other data
    manifest = (artifact / "training_manifest.json").read_bytes()
    capsys.readouterr()
    assert train_main(["evaluate", "--artifact-root", str(artifact), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert str(swapped) in err and "sha256" in err and "run_manifest.json" in err, err
    assert (artifact / "training_manifest.json").read_bytes() == manifest  # recorded metrics kept


def test_evaluate_never_writes_through_a_linked_job_folder(finished, tmp_path, capsys):
    _, _, artifact = finished
    job = artifact / JOB
    outside = tmp_path / "outside_job"
    shutil.copytree(job, outside)
    shutil.rmtree(job)
    job.symlink_to(outside, target_is_directory=True)
    before = sorted(p.name for p in outside.iterdir())
    capsys.readouterr()
    assert train_main(["evaluate", "--artifact-root", str(artifact), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert str(job) in err and "symbolic link" in err, err
    assert sorted(p.name for p in outside.iterdir()) == before
