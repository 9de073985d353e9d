"""``fly64-train run --backend tensorflow`` on the real tiny study: train, evaluate, record the backend."""

from __future__ import annotations

import json
import zipfile

import pytest

from fly64_data.contract import sha256_file
from fly64_manifest import validate
from fly64_train.cli import main as train_main

TINY_TRAIN = ["--max-epochs", "1", "--n-groups", "8", "--batch-size", "4", "--base-width", "4", "--deterministic"]


@pytest.mark.slow
def test_run_with_the_tensorflow_backend_trains_evaluates_and_records_it(tiny_study_data, tmp_path, capsys):
    artifact = tmp_path / "phase_e_tensorflow"
    assert train_main(["--phase-c-root", str(tiny_study_data / "phase_c"), "--phase-d-root",
                       str(tiny_study_data / "phase_d"), "--artifact-root", str(artifact), "--backend", "tensorflow",
                       "--dose", "1000", "--view", "baseline", *TINY_TRAIN]) == 0
    out = capsys.readouterr().out
    manifest = validate(artifact / "training_manifest.json", "training_manifest")
    (job,) = manifest["jobs"]
    assert manifest["backend"] == job["backend"] == "tensorflow"
    result = job["result"]
    bundle = artifact / job["job_dir"] / result["bundle_path"]
    assert result["status"] == "success" and result["bundle_sha256"] == sha256_file(bundle)
    assert f"sha256 {result['bundle_sha256']} size {result['bundle_size_bytes']} bytes" in out
    with zipfile.ZipFile(bundle) as zf:
        assert json.loads(zf.read("manifest.json"))["backend"] == "tensorflow"
    # Evaluation went through the numpy seam: metrics recorded for the Keras bundle.
    assert result["metrics"] and (artifact / job["job_dir"] / "reconstruction.npz").is_file(), result
