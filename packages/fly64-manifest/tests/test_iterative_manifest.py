"""Phase F's iterative_manifest.json: schema, typed loader, pairing with Phase E, and verify."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from fly64_manifest import (
    IterativeManifest,
    ManifestError,
    Study,
    load_iterative_manifest,
    load_schema,
    read_json,
    validate,
    verify,
    write_json,
)
from fly64_manifest.cli import main

STAMP = "2026-11-22T05:00:00Z"


def _artifact(job_dir: Path, name: str, data: bytes) -> dict[str, Any]:
    (job_dir / name).write_bytes(data)
    return {"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}


def iterative_document(study: Path) -> dict[str, Any]:
    """One Phase F job per Phase E job of the tiny study (the failed one failed here too), files written."""
    training = read_json(study / "phase_e" / "training_manifest.json")
    root = study / "phase_f"
    jobs = []
    for tj in training["jobs"]:
        job_dir = root / tj["job_dir"]
        job_dir.mkdir(parents=True, exist_ok=True)
        failed = tj["result"]["status"] == "failed"
        job: dict[str, Any] = {
            key: tj[key] for key in ("dose", "view", "gridsize", "job_dir", "data_root", "test_data_path")}
        job.update(status="failed" if failed else "success",
                   error="RuntimeError: pty-chi diverged" if failed else None,
                   engine="lsqml", engine_options={"noise_model": "poisson", "step_size": 1.0}, epochs=20,
                   batch_size=16, noise_model="poisson", device="cpu", wall_time_s=None if failed else 2.5,
                   duration_s=3.0, n_patterns=12, reconstruction_path=None, reconstruction_sha256=None,
                   reconstruction_size_bytes=None, artifacts=[], metrics=None)
        if not failed:
            h5 = _artifact(job_dir, "reconstruction.h5", f"h5 {tj['job_dir']}".encode())
            png = _artifact(job_dir, "reconstruction.png", f"png {tj['job_dir']}".encode())
            job.update(reconstruction_path="reconstruction.h5", reconstruction_sha256=h5["sha256"],
                       reconstruction_size_bytes=h5["size_bytes"], artifacts=[h5, png],
                       metrics={**tj["result"]["metrics"], "floor": tj["result"]["metrics"]["amplitude"]})
        jobs.append(job)
    return {
        "schema_version": "1.0", "kind": "iterative_manifest", "created": STAMP,
        "producer": {"package": "fly64-iterative", "version": "0.1.0"},
        "roots": {"phase_c_root": "../phase_c", "phase_d_root": "../phase_d", "artifact_root": "."},
        "filters": {"dose": None, "view": None, "seeds": None},
        "jobs": jobs, "skipped_views": training["skipped_views"],
    }


@pytest.fixture
def iterative_study(tiny_study: Path) -> Path:
    write_json(tiny_study / "phase_f" / "iterative_manifest.json", iterative_document(tiny_study),
               "iterative_manifest")
    return tiny_study


def test_loads_typed_and_pairs_with_phase_e(iterative_study):
    manifest = load_iterative_manifest(iterative_study)
    assert isinstance(manifest, IterativeManifest) and manifest.root == (iterative_study / "phase_f").resolve()
    study = Study(iterative_study)
    assert study.phase_f.path == manifest.path
    job = manifest.job(1000, "dense")
    assert job.key == study.job(1000, "dense").key  # one key pairs the two methods
    assert job.reconstruction_path == iterative_study.resolve() / "phase_f/dose_1000/dense/gs2/reconstruction.h5"
    assert job.test_data_path == iterative_study.resolve() / "phase_d/dose_1000/dense/dense_test.npz"
    assert job.seconds_per_1000_patterns == pytest.approx(2.5 / 12 * 1000)
    assert job.metric("phase", "ssim") == study.job(1000, "dense").metric("phase", "ssim")
    failed = manifest.job(10000, "dense")
    assert failed.status == "failed" and failed.error and failed.metric("phase", "ssim") is None
    with pytest.raises(ManifestError, match="was skipped"):
        manifest.job(1000, "sparse")
    with pytest.raises(TypeError):
        job.engine_options["step_size"] = 2.0  # read-only


def test_metrics_definition_matches_the_training_manifest():
    # One comparison reads both methods' metrics: the two self-contained schemas must not drift apart.
    training, iterative = load_schema("training_manifest")["$defs"], load_schema("iterative_manifest")["$defs"]
    assert iterative["metric_set"] == training["metric_set"]
    assert iterative["metrics"]["properties"] == training["metrics"]["properties"]
    assert iterative["skipped_view"] == training["skipped_view"]


@pytest.mark.parametrize("case", ["failed_without_error", "success_without_reconstruction", "absolute_path",
                                  "escaping_artifact", "unknown_engine", "zero_epochs", "bad_job_dir"])
def test_schema_rejects(iterative_study, case):
    doc = read_json(iterative_study / "phase_f/iterative_manifest.json")
    ok, bad = doc["jobs"][0], doc["jobs"][2]
    assert ok["status"] == "success"
    if case == "failed_without_error":
        target = next(j for j in doc["jobs"] if j["status"] == "failed")
        target["error"] = None
    elif case == "success_without_reconstruction":
        ok["reconstruction_path"] = None
    elif case == "absolute_path":
        ok["test_data_path"] = "/etc/passwd"
    elif case == "escaping_artifact":
        ok["artifacts"][1]["path"] = "../../../x.png"
    elif case == "unknown_engine":
        bad["engine"] = "rpie"
    elif case == "zero_epochs":
        ok["epochs"] = 0
    else:
        ok["job_dir"] = "dose_1000/other/gs1"
    with pytest.raises(ManifestError):
        validate(doc, "iterative_manifest")


def test_duplicate_job_refused(iterative_study):
    path = iterative_study / "phase_f/iterative_manifest.json"
    doc = read_json(path)
    doc["jobs"].append(dict(doc["jobs"][0]))
    write_json(path, doc, "iterative_manifest")
    with pytest.raises(ManifestError, match="repeats job baseline gs1 at dose 1000"):
        load_iterative_manifest(path)


def test_verify_clean_study_and_bare_root(iterative_study, capsys):
    assert verify(iterative_study) == []
    assert verify(iterative_study / "phase_f") == []
    assert main(["verify", str(iterative_study / "phase_f")]) == 0
    assert main(["validate", str(iterative_study / "phase_f/iterative_manifest.json")]) == 0
    assert "valid iterative_manifest" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["reconstruction.h5", "reconstruction.png"])
def test_verify_rehashes_every_artifact(iterative_study, capsys, name):
    target = iterative_study / "phase_f/dose_10000/baseline/gs1" / name
    data = bytearray(target.read_bytes())
    data[0] ^= 0x01
    target.write_bytes(bytes(data))
    problems = [str(p) for p in verify(iterative_study)]
    assert len(problems) == 1 and problems[0].startswith(str(target.resolve())) and "sha256" in problems[0]
    assert "iterative job baseline gs1 at dose 10000" in problems[0]
    assert main(["verify", str(iterative_study)]) == 1
    assert str(target.resolve()) in capsys.readouterr().out


def test_verify_reports_missing_reconstruction_and_invalid_manifest(iterative_study):
    (iterative_study / "phase_f/dose_1000/baseline/gs1/reconstruction.h5").unlink()
    assert any("reconstruction of iterative job baseline gs1 at dose 1000 is missing" in str(p)
               for p in verify(iterative_study))
    path = iterative_study / "phase_f/iterative_manifest.json"
    path.write_text(path.read_text().replace('"lsqml"', '"nope"', 1))
    problems = [str(p) for p in verify(iterative_study)]
    assert problems and all(p.startswith(str(path)) for p in problems)


def test_verify_refuses_foreign_roots(iterative_study):
    path = iterative_study / "phase_f/iterative_manifest.json"
    doc = read_json(path)
    doc["roots"]["phase_c_root"] = "/somewhere/else"
    write_json(path, doc, "iterative_manifest")
    assert any("roots/phase_c_root" in str(p) for p in verify(iterative_study))
