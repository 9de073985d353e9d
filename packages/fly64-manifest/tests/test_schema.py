import json

import pytest

from fly64_manifest import KINDS, ManifestError, load_schema, validate, write_json
from fly64_manifest.cli import main


def _run_manifest():
    rec = {"path": "dose_1000/patched_train.npz", "sha256": "a" * 64, "size_bytes": 10, "n_positions": 3}
    return {
        "schema_version": "1.0",
        "kind": "run_manifest",
        "created": "2026-11-22T04:00:00Z",
        "producer": {"package": "fly64-data", "version": "0.1.0"},
        "design": {},
        "base_sample": {"source": "embedded", "sha256": "b" * 64, "object_shape": [8, 8],
                        "probe_shape": [4, 4], "n_positions": 6},
        "parameters": {"patch_size": 4, "seeds": {"simulation": 42}, "split_axis": "y"},
        "doses": [{"dose": 1000.0, "directory": "dose_1000", "measured_mean_counts": 1000.0,
                   "intensity_scale": 2.0, "noise_seed": 1,
                   "files": {"train": rec, "test": dict(rec, path="dose_1000/patched_test.npz")}}],
    }


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_schema_is_valid_2020_12(kind):
    assert load_schema(kind)["$schema"].endswith("2020-12/schema")


def test_accepts_good_run_manifest():
    doc = _run_manifest()
    assert validate(doc, "run_manifest") is doc


@pytest.mark.parametrize(
    "mutate, where",
    [
        (lambda d: d.pop("doses"), "<root>"),
        (lambda d: d["doses"][0].update(dose="1000"), "doses/0/dose"),
        (lambda d: d["doses"][0]["files"]["train"].update(path="/abs/x.npz"), "doses/0/files/train/path"),
        (lambda d: d["doses"][0]["files"]["train"].update(path="../x.npz"), "doses/0/files/train/path"),
        (lambda d: d["doses"][0]["files"]["train"].update(sha256="ABC"), "doses/0/files/train/sha256"),
    ],
)
def test_rejects_broken_run_manifest(mutate, where):
    doc = _run_manifest()
    mutate(doc)
    with pytest.raises(ManifestError, match=f"invalid at {where}"):
        validate(doc, "run_manifest", source="x.json")


def test_write_json_is_atomic_and_validates(tmp_path):
    path = tmp_path / "run_manifest.json"
    write_json(path, _run_manifest(), "run_manifest")
    assert json.loads(path.read_text())["kind"] == "run_manifest"
    bad = _run_manifest()
    bad.pop("kind")
    with pytest.raises(ManifestError):
        write_json(path, bad, "run_manifest")
    # The previous good version survives a rejected write, and no temp file is left.
    assert json.loads(path.read_text())["kind"] == "run_manifest"
    assert [p.name for p in tmp_path.iterdir()] == ["run_manifest.json"]


def test_cli_validate(tmp_path, capsys):
    path = tmp_path / "run_manifest.json"
    path.write_text(json.dumps(_run_manifest()))
    assert main(["validate", str(path)]) == 0
    path.write_text("{not json")
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert str(path) in err and "not valid JSON" in err and "\n" not in err
