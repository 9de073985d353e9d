"""Typed, read-only loading of each phase and the Study view over them."""

import dataclasses
import os

import pytest

from fly64_manifest import (
    ManifestError,
    Study,
    load_overlap_manifest,
    load_run_manifest,
    load_skip_summary,
    load_training_manifest,
    write_json,
)


@pytest.mark.parametrize("where", ["root", "phase_e", "file"])
def test_training_manifest_from_root_folder_or_file(tiny_study, where):
    arg = {"root": tiny_study, "phase_e": tiny_study / "phase_e",
           "file": tiny_study / "phase_e" / "training_manifest.json"}[where]
    manifest = load_training_manifest(arg)
    assert manifest.root == (tiny_study / "phase_e").resolve()
    assert len(manifest.jobs) == 5


def test_job_fields_and_absolute_paths(tiny_study):
    manifest = load_training_manifest(tiny_study)
    job = manifest.job(1000, "dense")
    assert (job.dose, job.view, job.gridsize, job.status) == (1000.0, "dense", 2, "success")
    assert job.bundle_path == (tiny_study / "phase_e/dose_1000/dense/gs2/wts.h5.zip").resolve()
    assert job.bundle_path.is_absolute() and job.bundle_path.is_file()
    assert len(job.bundle_sha256) == 64 and job.bundle_size_bytes == job.bundle_path.stat().st_size
    assert job.train_data_path == (tiny_study / "phase_d/dose_1000/dense/dense_train.npz").resolve()
    assert job.paths["log"] == job.job_dir / "train.log"
    assert job.metric("phase", "ssim") == pytest.approx(0.9 * 0.65)
    assert job.metric("phase", "nonexistent") is None
    baseline = manifest.job(1e4, "baseline", 1)
    assert baseline.train_data_path == (tiny_study / "phase_c/dose_10000/patched_train.npz").resolve()
    assert manifest.job(10000, "dense").error.startswith("RuntimeError")
    assert [j.view for j in manifest.jobs_with_status("failed")] == ["dense"]
    assert manifest.doses == (1000.0, 10000.0)


def test_lookup_of_skipped_and_missing_jobs(tiny_study):
    manifest = load_training_manifest(tiny_study)
    with pytest.raises(ManifestError, match="sparse at dose 1000 was skipped: Phase D skipped"):
        manifest.job(1000, "sparse")
    with pytest.raises(ManifestError, match="no job for dense at dose 5"):
        manifest.job(5, "dense")
    assert manifest.skipped_views[0].key == (1000.0, "sparse", 2)
    assert manifest.skip_summary_path == manifest.root / "skip_summary.json"


def test_models_are_read_only(tiny_study):
    job = load_training_manifest(tiny_study).jobs[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.status = "failed"
    with pytest.raises(TypeError):
        job.metrics["phase"]["ssim"] = 1.0
    with pytest.raises(TypeError):
        job.raw["result"]["status"] = "failed"


def test_duplicate_job_refused(tiny_study, training_doc):
    training_doc["jobs"].append(training_doc["jobs"][0])
    write_json(tiny_study / "phase_e/training_manifest.json", training_doc, "training_manifest")
    with pytest.raises(ManifestError, match=r"jobs/5 repeats job baseline gs1 at dose 1000 \(first at jobs/0\)"):
        load_training_manifest(tiny_study)


def test_absolute_roots_are_allowed(tiny_study, training_doc):
    training_doc["phase_c_root"] = str((tiny_study / "phase_c").resolve())
    training_doc["artifact_root"] = str((tiny_study / "phase_e").resolve())
    write_json(tiny_study / "phase_e/training_manifest.json", training_doc, "training_manifest")
    job = load_training_manifest(tiny_study).job(1000, "baseline")
    assert job.train_data_path.is_file()


def test_missing_manifest_names_where_it_looked(tmp_path):
    with pytest.raises(ManifestError, match=r"no training_manifest\.json \(looked at .*phase_e"):
        load_training_manifest(tmp_path)


def test_skip_summary(tiny_study):
    summary = load_skip_summary(tiny_study)
    assert summary.skipped_count == 1 and summary.skipped_views[0].view == "sparse"


def test_phase_c_and_d(tiny_study):
    run = load_run_manifest(tiny_study)
    assert [d.dose for d in run.doses] == [1000.0, 10000.0]
    assert run.dose(1e3).train.path == (tiny_study / "phase_c/dose_1000/patched_train.npz").resolve()
    assert run.dose(1000).test.n_positions == 12
    with pytest.raises(ManifestError, match="no dose 7"):
        run.dose(7)
    overlap = load_overlap_manifest(tiny_study / "phase_d")
    assert {(v.dose, v.view) for v in overlap.views} == {(1000.0, "dense"), (1e4, "dense"), (1e4, "sparse")}
    assert [(s.dose, s.view, s.gridsize) for s in overlap.skipped_views] == [(1000.0, "sparse", None)]
    with pytest.raises(ManifestError, match="sparse at dose 1000 was skipped"):
        overlap.view(1000, "sparse")
    dense = overlap.view(1000, "dense")
    assert dense.train.path.is_file() and dense.metrics_path.name == "dense_metrics.json"
    metrics = overlap.metrics(1000, "dense")
    assert metrics["kind"] == "overlap_metrics" and metrics["splits"]["train"]["kept"] == 6


def test_study_ties_phases_together(tiny_study):
    study = Study(tiny_study)
    lineages = {(ln.job.dose, ln.job.view): ln for ln in study.lineages()}
    assert len(lineages) == 5
    base = lineages[(1000.0, "baseline")]
    assert base.phase == "phase_c" and base.overlap_view is None
    assert base.train == study.phase_c.dose(1000).train
    assert base.dose_data.intensity_scale == pytest.approx(1000 ** 0.5)
    dense = lineages[(10000.0, "sparse")]
    assert dense.phase == "phase_d" and dense.overlap_view.view == "sparse"
    assert dense.train.sha256 == study.phase_d.view(1e4, "sparse").train.sha256
    assert dense.job.bundle_sha256 == study.job(1e4, "sparse").bundle_sha256


def test_study_can_be_moved(tiny_study, tmp_path):
    # Relative paths mean a copied or moved study still resolves to its own files.
    moved = tmp_path / "elsewhere"
    os.rename(tiny_study, moved)
    study = Study(moved)
    assert study.job(1000, "dense").bundle_path.is_file()
    assert study.verify() == []
