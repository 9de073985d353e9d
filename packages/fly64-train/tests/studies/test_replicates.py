"""Replicates (--seeds), several artifact roots, the 1.0 manifest, reconstruction.h5 and equal-positions controls."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from fly64_manifest import load_training_manifest, validate, verify
from fly64_train.cli import main as cli_main
from fly64_train.studies.matrix import build_matrix

TINY_TRAIN = ["--max-epochs", "1", "--n-groups", "8", "--batch-size", "4", "--base-width", "4", "--deterministic"]


def _roots(tiny_study_data: Path, root: Path) -> list[str]:
    for phase in ("phase_c", "phase_d"):
        (root / phase).symlink_to(tiny_study_data / phase, target_is_directory=True)
    return ["--phase-c-root", str(root / "phase_c"), "--phase-d-root", str(root / "phase_d")]


@pytest.fixture(scope="module")
def replicated(tiny_study_data, tmp_path_factory) -> Path:
    """One cell (dose 1000 baseline) trained with two seeds by the CLI."""
    root = tmp_path_factory.mktemp("replicated")
    assert cli_main(["run", *_roots(tiny_study_data, root), "--artifact-root", str(root / "phase_e"),
                     "--dose", "1000", "--view", "baseline", "--seeds", "0", "--seeds", "1", *TINY_TRAIN]) == 0
    return root


@pytest.mark.slow  # two trainings on the shared cores: ~40-90 s
def test_two_seeds_train_the_cell_twice_in_seed_folders_and_the_report_shows_mean_std(replicated, tmp_path):
    manifest = load_training_manifest(replicated / "phase_e")
    assert manifest.schema_version == "1.1"
    assert sorted(job.seed for job in manifest.jobs) == [0, 1]
    for job in manifest.jobs:
        assert job.job_dir == replicated / "phase_e" / "dose_1000" / "baseline" / "gs1" / f"seed_{job.seed}"
        assert job.context["train_positions"] > 0 and job.context["nn_overlap"] is not None
    a, b = (job.metrics["phase"]["ssim"] for job in manifest.jobs)
    assert a != b  # the seed reached the training
    out = tmp_path / "report"
    assert cli_main(["report", "--artifact-root", str(replicated / "phase_e"), "--output", str(out)]) == 0
    row = next(line for line in (out / "report.md").read_text().splitlines() if line.startswith("| 1000 "))
    assert "±" in row and "(n=2)" in row and "| 0,1 |" in row
    mean = np.mean([a, b])
    assert f"{mean:.3f} ± {np.std([a, b], ddof=1):.3f} (n=2)" in row
    with (out / "metrics.csv").open() as fh:
        assert sorted(r["seed"] for r in csv.DictReader(fh)) == ["0", "1"]
    assert verify(replicated / "phase_e") == []


@pytest.mark.slow  # two trainings on the shared cores: ~40-90 s
def test_reconstruction_h5_reads_back_and_a_tampered_one_fails_verify(replicated, tmp_path):
    job = load_training_manifest(replicated / "phase_e").jobs[0]
    (artifact,) = job.artifacts
    assert artifact.recorded == "reconstruction.h5"
    with np.load(job.job_dir / "reconstruction.npz") as npz, h5py.File(artifact.path, "r") as h5:
        assert np.array_equal(h5["object"][0], npz["stitched"])
        assert h5["probe"].shape[:2] == (1, 1) and np.iscomplexobj(h5["probe"][()])
        assert h5.attrs["probe_photon_count"] == 1000.0 and h5.attrs["photon_energy_eV"] > 0
        pixel = h5["object"].attrs["pixel_width_m"]
        n = h5["probe_position_indexes"].shape[0]
        assert n == job.context["test_positions"]
        assert h5["probe_position_x_m"].shape == (n,) and np.all(h5["probe_position_x_m"][()] / pixel >= 0)
        assert h5["loss_values"].shape == h5["loss_epochs"].shape
    copy = tmp_path / "phase_e"
    shutil.copytree(replicated / "phase_e", copy, symlinks=True)
    for phase in ("phase_c", "phase_d"):
        (tmp_path / phase).symlink_to(replicated / phase)
    tampered = copy / job.job_dir.relative_to(replicated / "phase_e") / "reconstruction.h5"
    tampered.write_bytes(tampered.read_bytes()[:-1] + b"\0")
    problems = [str(p) for p in verify(copy)]
    assert any("reconstruction.h5" in p and "sha256" in p for p in problems), problems


@pytest.mark.slow  # two trainings on the shared cores: ~40-90 s
def test_a_1_0_manifest_still_loads_and_reports(replicated, tmp_path):
    """A manifest written before 1.1 (no seed, context, n_groups or artifacts) is read as it was."""
    copy = tmp_path / "phase_e"
    shutil.copytree(replicated / "phase_e", copy)
    for phase in ("phase_c", "phase_d"):
        (tmp_path / phase).symlink_to(replicated / phase)
    path = copy / "training_manifest.json"
    doc = json.loads(path.read_text())
    doc["schema_version"] = "1.0"
    job = doc["jobs"][0]
    for key in ("seed", "context"):
        job.pop(key)
    for key in ("n_groups", "artifacts"):
        job["result"].pop(key)
    job["job_dir"] = "dose_1000/baseline/gs1"
    shutil.copytree(copy / "dose_1000/baseline/gs1/seed_0", copy / "dose_1000/baseline/gs1", dirs_exist_ok=True)
    doc["jobs"] = [job]
    path.write_text(json.dumps(doc))
    manifest = load_training_manifest(copy)
    assert manifest.jobs[0].seed is None and manifest.jobs[0].artifacts == ()
    out = tmp_path / "report"
    assert cli_main(["report", "--artifact-root", str(copy), "--output", str(out)]) == 0
    assert "| 1000 | baseline (gs1) | torch | - |" in (out / "report.md").read_text()


@pytest.mark.slow  # two trainings on the shared cores: ~40-90 s
def test_two_artifact_roots_sit_side_by_side_with_the_backend_as_a_column(replicated, tmp_path):
    other = tmp_path / "phase_e_tf"
    shutil.copytree(replicated / "phase_e", other)
    for phase in ("phase_c", "phase_d"):
        (tmp_path / phase).symlink_to(replicated / phase)
    path = other / "training_manifest.json"
    doc = json.loads(path.read_text())
    doc["backend"] = "tensorflow"
    for job in doc["jobs"]:
        job["backend"] = "tensorflow"
        # Another backend's root holds other bundles: re-seal each copy with its own bytes, since the
        # report counts one bundle (by sha256) once however many roots list it.
        bundle = other / job["job_dir"] / job["result"]["bundle_path"]
        bundle.write_bytes(bundle.read_bytes() + b"\0")
        job["result"]["bundle_sha256"] = hashlib.sha256(bundle.read_bytes()).hexdigest()
        job["result"]["bundle_size_bytes"] = bundle.stat().st_size
    validate(doc, "training_manifest")
    path.write_text(json.dumps(doc))
    out = tmp_path / "report"
    assert cli_main(["report", "--artifact-root", str(replicated / "phase_e"), "--artifact-root", str(other),
                     "--output", str(out)]) == 0
    rows = [line for line in (out / "report.md").read_text().splitlines() if line.startswith("| 1000 ")]
    assert len(rows) == 2
    assert sorted(row.split(" | ")[2] for row in rows) == ["tensorflow", "torch"]


@pytest.mark.parametrize("seeds", [["1", "1"], ["2", "--seeds", "2"], ["-1"], ["x"]])
def test_a_repeated_or_negative_seed_is_a_usage_error_and_writes_nothing(tiny_study_data, tmp_path, capsys, seeds):
    with pytest.raises(SystemExit) as exc:
        cli_main(["run", *_roots(tiny_study_data, tmp_path), "--artifact-root", str(tmp_path / "phase_e"),
                  "--seeds", *seeds])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seeds" in err[0]
    assert not (tmp_path / "phase_e").exists()


def test_equal_positions_controls_join_the_matrix_with_their_source_gridsize(tiny_study_data, tmp_path):
    from fly64_data.design import get_study_design
    from fly64_manifest import load_overlap_manifest
    from fly64_overlap.cli import main as overlap_main

    assert overlap_main(["--phase-c-root", str(tiny_study_data / "phase_c"), "--output-root",
                         str(tmp_path / "phase_d"), "--dose", "1000", "--match-positions", "sparse"]) == 0
    overlap = load_overlap_manifest(tmp_path / "phase_d")
    jobs = {(job.view, job.gridsize) for job in build_matrix(get_study_design(), overlap) if job.dose == 1000}
    assert {("baseline_matched", 1), ("dense_matched", 2), ("baseline", 1), ("sparse", 2)} <= jobs
