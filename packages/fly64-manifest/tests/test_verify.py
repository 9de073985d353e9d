"""verify() re-hashes bundles, checks the skip summary and refuses bad paths; the CLI reports them."""

import json

import pytest

from fly64_manifest import read_json, verify, write_json
from fly64_manifest.cli import main
from fly64_manifest.paths import path_problem


def _messages(root):
    return [str(p) for p in verify(root)]


def test_clean_study_verifies(tiny_study):
    assert verify(tiny_study) == []
    assert verify(tiny_study / "phase_e") == []  # a bare artifact root works too
    assert verify(tiny_study, rehash_data=True) == []


def test_modified_bundle_byte(tiny_study):
    bundle = tiny_study / "phase_e/dose_1000/dense/gs2/wts.h5.zip"
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size, one bit different
    bundle.write_bytes(bytes(data))
    messages = _messages(tiny_study)
    assert len(messages) == 1
    assert messages[0].startswith(str(bundle.resolve())) and "sha256" in messages[0]


def test_truncated_bundle_reports_size(tiny_study):
    bundle = tiny_study / "phase_e/dose_10000/sparse/gs2/wts.h5.zip"
    bundle.write_bytes(bundle.read_bytes()[:-1])
    assert any("size" in m and "!= recorded" in m for m in _messages(tiny_study))


def test_deleted_bundle(tiny_study):
    bundle = tiny_study / "phase_e/dose_1000/baseline/gs1/wts.h5.zip"
    bundle.unlink()
    assert _messages(tiny_study) == [f"{bundle.resolve()}: bundle of job baseline gs1 at dose 1000 is missing"]


def test_skip_summary_drift(tiny_study, skip_doc):
    skip_doc["skipped_views"][0]["reason"] = "something else"
    write_json(tiny_study / "phase_e/skip_summary.json", skip_doc, "skip_summary")
    messages = _messages(tiny_study)
    assert len(messages) == 2 and all("skip_summary.json" in m for m in messages)
    assert "is not in training_manifest.json" in messages[0] and "lacks skip sparse gs2" in messages[1]


def test_skip_summary_missing_entry_and_count(tiny_study, skip_doc):
    skip_doc["skipped_views"] = []
    write_json(tiny_study / "phase_e/skip_summary.json", skip_doc, "skip_summary")
    messages = _messages(tiny_study)
    assert any("skipped_count 1 != 0 skipped_views" in m for m in messages)
    assert any("lacks skip sparse gs2 at dose 1000" in m for m in messages)


def test_missing_skip_summary(tiny_study):
    (tiny_study / "phase_e/skip_summary.json").unlink()
    assert _messages(tiny_study) == [f"{tiny_study / 'phase_e/skip_summary.json'}: skip summary is missing"]


@pytest.mark.parametrize("field, value", [
    ("bundle_path", "/etc/passwd"),
    ("bundle_path", "../../../../outside.zip"),
    ("log_path", "C:/train.log"),
])
def test_refuses_absolute_or_escaping_paths(tiny_study, training_doc, field, value):
    job = training_doc["jobs"][0]
    (job["result"] if field.startswith("bundle") else job)[field] = value
    write_json(tiny_study / "phase_e/training_manifest.json", training_doc)  # no kind: write it broken
    messages = _messages(tiny_study)
    assert any("jobs/0" in m and "must be a relative path" in m and repr(value) in m for m in messages)


def test_root_pointing_elsewhere(tiny_study, training_doc, tmp_path):
    training_doc["phase_c_root"] = str(tmp_path / "someone_elses_phase_c")
    write_json(tiny_study / "phase_e/training_manifest.json", training_doc, "training_manifest")
    messages = _messages(tiny_study)
    assert any("phase_c_root" in m and "not " in m for m in messages)
    assert any("train_data_path of job baseline gs1 at dose 1000 is missing" in m for m in messages)


def test_job_dir_must_match_its_key(tiny_study, training_doc):
    training_doc["jobs"][0]["job_dir"] = "dose_1000/dense/gs2"
    write_json(tiny_study / "phase_e/training_manifest.json", training_doc, "training_manifest")
    assert any("has job_dir 'dose_1000/dense/gs2', expected 'dose_1000/baseline/gs1'" in m
               for m in _messages(tiny_study))


def test_stale_phase_d_and_changed_data(tiny_study):
    run = tiny_study / "phase_c/run_manifest.json"
    doc = read_json(run)
    doc["created"] = "2026-11-23T00:00:00Z"  # Phase C re-run after Phase D
    write_json(run, doc, "run_manifest")
    data = tiny_study / "phase_c/dose_1000/patched_test.npz"
    data.write_bytes(b"changed")
    assert any("re-run Phase D" in m for m in _messages(tiny_study))
    assert not any("data file" in m for m in _messages(tiny_study))  # hashes only on request
    assert any(m.startswith(str(data.resolve())) and "data file" in m
               for m in [str(p) for p in verify(tiny_study, rehash_data=True)])


def test_newer_major_reported_not_crashed(tiny_study, training_doc):
    training_doc["schema_version"] = "3.1"
    write_json(tiny_study / "phase_e/training_manifest.json", training_doc)
    assert any("newer than fly64-manifest" in m for m in _messages(tiny_study))


def test_missing_training_manifest(tmp_path):
    assert _messages(tmp_path) == [f"{tmp_path / 'phase_e/training_manifest.json'}: training manifest is missing"]


def test_path_problem_is_lexical():
    from pathlib import Path

    root = Path("/study/phase_e")
    assert path_problem("wts.h5.zip", root / "dose_1000/dense/gs2", root) is None
    assert "escapes" in path_problem("../../../../x", root / "dose_1000/dense/gs2", root)
    assert "escapes" in path_problem("../phase_e2/x", root, root)  # a sibling sharing the prefix
    assert "absolute" in path_problem("\\\\server\\share\\x", root, root)


def test_cli_verify(tiny_study, capsys):
    assert main(["verify", str(tiny_study)]) == 0
    assert "verified" in capsys.readouterr().out
    (tiny_study / "phase_e/dose_1000/baseline/gs1/wts.h5.zip").unlink()
    (tiny_study / "phase_e/dose_10000/sparse/gs2/wts.h5.zip").write_bytes(b"x")
    assert main(["verify", str(tiny_study)]) == 1
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert len(lines) == 3  # missing; and size + sha256 of the rewritten one
    assert all(line.startswith(str(tiny_study.resolve())) for line in lines)
    assert "3 problem(s)" in out.err


def test_cli_summary(tiny_study, capsys):
    assert main(["summary", str(tiny_study)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:6] == ["dose", "view", "gs", "status", "epochs", "loss"]
    assert len(table) == 1 + 5 + 1
    assert "failed" in next(line for line in table if "10000" in line and "dense" in line)
    assert "Phase D skipped" in table[-1]
    assert main(["summary", str(tiny_study), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    first = rows[0]
    assert (first["dose"], first["view"], first["status"]) == (1000.0, "baseline", "success")
    assert first["phase.ssim"] == pytest.approx(0.54)
    assert rows[-1]["status"] == "skipped_view"


def test_cli_validate_phase_e_files(tiny_study, capsys):
    assert main(["validate", str(tiny_study / "phase_e/training_manifest.json")]) == 0
    assert main(["validate", str(tiny_study / "phase_e/skip_summary.json")]) == 0
    assert main(["validate", str(tiny_study / "phase_d/dose_1000/dense/dense_metrics.json")]) == 0
    assert capsys.readouterr().out.count(": valid ") == 3


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["summary", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("fly64-manifest: error: ") and "\n" not in err


def test_every_backend_artifact_root_of_a_study_is_verified(tiny_study):
    # A TensorFlow-only study: its Phase E root is phase_e_tensorflow/, not phase_e/.
    (tiny_study / "phase_e").rename(tiny_study / "phase_e_tensorflow")
    assert verify(tiny_study) == []
    bundle = tiny_study / "phase_e_tensorflow/dose_1000/dense/gs2/wts.h5.zip"
    bundle.write_bytes(bundle.read_bytes()[:-1])
    messages = _messages(tiny_study)
    assert messages and all(m.startswith(str(bundle.resolve())) for m in messages)


def test_a_study_without_any_phase_e_root_says_so(tiny_study):
    import shutil

    shutil.rmtree(tiny_study / "phase_e")
    assert any("training manifest is missing" in m for m in _messages(tiny_study))
