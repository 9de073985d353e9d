"""The two Phase D schemas accept what fly64-overlap writes and refuse what readers must not trust."""

import copy

import pytest

from fly64_manifest import ManifestError, validate
from fly64_overlap.cli import main


@pytest.fixture
def written(phase_c, tmp_path):
    out = tmp_path / "phase_d"
    assert main(["--phase-c-root", str(phase_c), "--output-root", str(out), "--dose", "1000"]) == 0
    return validate(out / "overlap_manifest.json", "overlap_manifest")


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d["views"][0]["files"]["train"].update(path="/abs/dense_train.npz"), "views/0/files/train/path"),
    (lambda d: d["views"][0]["files"]["train"].update(path="../dense_train.npz"), "views/0/files/train/path"),
    (lambda d: d["views"][0]["files"]["train"].update(sha256="XYZ"), "views/0/files/train/sha256"),
    (lambda d: d["views"][0].pop("files"), "views/0"),  # an ok view must list its files
    (lambda d: d["views"][1].update(files=d["views"][0]["files"]), "views/1"),  # a skipped one must not
    (lambda d: d["views"][1].pop("reason"), "views/1"),
    (lambda d: d["views"][0].update(status="partial"), "views/0"),
    (lambda d: d["phase_c"].update(run_manifest_sha256="0"), "phase_c/run_manifest_sha256"),
])
def test_overlap_manifest_schema_rejects(written, mutate, where):
    assert [e["status"] for e in written["views"]] == ["ok", "skipped"]
    doc = copy.deepcopy(written)
    mutate(doc)
    with pytest.raises(ManifestError, match=f"invalid at {where}"):
        validate(doc, "overlap_manifest", source="overlap_manifest.json")


def test_overlap_metrics_schema_rejects_fraction_above_one(written, tmp_path):
    doc = validate(tmp_path / "phase_d" / "dose_1000" / "dense" / "dense_metrics.json", "overlap_metrics")
    doc["splits"]["train"]["nearest_neighbour"]["mean"] = 1.5
    with pytest.raises(ManifestError, match="splits/train/nearest_neighbour/mean"):
        validate(doc, "overlap_metrics")
