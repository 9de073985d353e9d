"""Hostile inputs to the Phase E runner: each is refused in one line, exit 1, with nothing written.

A standing suite (issue #11): every later change must keep these refused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fly64_data.contract import sha256_file
from fly64_train.cli import main as train_main


def _copy_study(tiny_study_data: Path, tmp_path: Path) -> tuple[Path, Path]:
    phase_c, phase_d = tmp_path / "phase_c", tmp_path / "phase_d"
    shutil.copytree(tiny_study_data / "phase_c", phase_c)
    shutil.copytree(tiny_study_data / "phase_d", phase_d)
    return phase_c, phase_d


def _run(phase_c: Path, phase_d: Path, artifact: Path, *extra: str) -> int:
    return train_main(["--phase-c-root", str(phase_c), "--phase-d-root", str(phase_d),
                       "--artifact-root", str(artifact), "--max-epochs", "1", "--n-groups", "8", "--batch-size", "4",
                       "--base-width", "4", "--no-evaluate", *extra])


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("fly64-train: error: ") and "\n" not in err, err
    return err


def test_a_phase_c_file_swapped_for_another_dose_is_refused_before_anything_is_written(
        tiny_study_data, tmp_path, capsys):
    phase_c, phase_d = _copy_study(tiny_study_data, tmp_path)
    swapped = phase_c / "dose_1000" / "patched_train.npz"
    shutil.copyfile(phase_c / "dose_100000" / "patched_train.npz", swapped)
    artifact = tmp_path / "e"
    assert _run(phase_c, phase_d, artifact, "--dose", "1000") == 1
    err = _one_line_error(capsys)
    assert str(swapped) in err and "sha256" in err and "run_manifest.json" in err
    assert not artifact.exists()


def test_a_swapped_file_whose_digest_was_rerecorded_is_caught_by_its_metadata_dose(
        tiny_study_data, tmp_path, capsys):
    phase_c, phase_d = _copy_study(tiny_study_data, tmp_path)
    swapped = phase_c / "dose_1000" / "patched_train.npz"
    shutil.copyfile(phase_c / "dose_100000" / "patched_train.npz", swapped)
    manifest = phase_c / "run_manifest.json"
    doc = json.loads(manifest.read_text())
    record = next(d for d in doc["doses"] if d["dose"] == 1000)["files"]["train"]
    record["sha256"], record["size_bytes"] = sha256_file(swapped), swapped.stat().st_size
    manifest.write_text(json.dumps(doc))
    artifact = tmp_path / "e"
    assert _run(phase_c, phase_d, artifact, "--dose", "1000", "--view", "baseline") == 1
    err = _one_line_error(capsys)
    assert str(swapped) in err and "dose 100000" in err and "dose 1000" in err
    assert not artifact.exists()


def test_a_tampered_phase_d_view_is_refused(tiny_study_data, tmp_path, capsys):
    phase_c, phase_d = _copy_study(tiny_study_data, tmp_path)
    tampered = phase_d / "dose_10000" / "sparse" / "sparse_test.npz"
    shutil.copyfile(phase_d / "dose_10000" / "dense" / "dense_test.npz", tampered)
    artifact = tmp_path / "e"
    assert _run(phase_c, phase_d, artifact, "--dose", "10000", "--dry-run") == 1
    err = _one_line_error(capsys)
    assert str(tampered) in err and "overlap_manifest.json" in err
    assert not artifact.exists()


@pytest.mark.parametrize("which", ["phase_c/run_manifest.json", "phase_d/overlap_manifest.json"])
def test_a_manifest_nested_100000_levels_deep_is_a_one_line_error(tiny_study_data, tmp_path, capsys, which):
    phase_c, phase_d = _copy_study(tiny_study_data, tmp_path)
    nested = tmp_path / which
    nested.write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    artifact = tmp_path / "e"
    assert _run(phase_c, phase_d, artifact, "--dose", "1000", "--dry-run") == 1
    err = _one_line_error(capsys)
    assert str(nested) in err
    assert not artifact.exists()
