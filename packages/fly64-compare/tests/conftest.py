"""A tiny real study for the comparison: Phase C/D by their CLIs, Phase E by a real (seconds-long) training.

Phase F's side is written the way Phase F writes it: each job's test split reconstructed (here: its
true patches plus noise, stitched in the object frame), scored by the Phase E scorer, saved as a
ptychodus product by the Phase E product writer, and recorded in an ``iterative_manifest.json``
validated against its schema. The tests themselves import only fly64_compare and fly64_manifest.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

TINY_STUDY_DATA = ["--patch-size", "32", "--object-size", "192", "--scan-step", "8"]
TINY_TRAIN = ["--max-epochs", "1", "--n-groups", "8", "--batch-size", "4", "--base-width", "4", "--deterministic",
              "--logger", "none"]
DOSES = ("1000", "10000")


@pytest.fixture(scope="session")
def trained_study(tmp_path_factory) -> Path:
    """Phase C, D and E (baseline at two doses, one seed) of a tiny study; treat as read-only."""
    import torch

    from fly64_data.cli import main as data_main
    from fly64_overlap.cli import main as overlap_main
    from fly64_train.cli import main as train_main

    torch.set_num_threads(1)  # the machine is shared
    root = tmp_path_factory.mktemp("compare_study")
    assert data_main(["generate", "--output-root", str(root / "phase_c"), *TINY_STUDY_DATA]) == 0
    assert overlap_main(["--phase-c-root", str(root / "phase_c"), "--output-root", str(root / "phase_d")]) == 0
    dose_args = [arg for dose in DOSES for arg in ("--dose", dose)]
    assert train_main(["run", "--phase-c-root", str(root / "phase_c"), "--phase-d-root", str(root / "phase_d"),
                       "--artifact-root", str(root / "phase_e"), "--view", "baseline", *dose_args,
                       *TINY_TRAIN]) == 0
    return root


def iterative_job(study: Path, training_job: dict[str, Any], *, noise: float, seed: int | None = None,
                  fail: str | None = None) -> dict[str, Any]:
    """Reconstruct a Phase E job's test split as Phase F would record it (a noisy truth, really scored)."""
    from fly64_manifest import sha256_file
    from fly64_train.evaluation.evaluate import EvaluationConfig, save_product, score_stitched
    from fly64_train.evaluation.stitch import stitch

    manifest_roots = {"phase_c_root": study / "phase_c", "phase_d_root": study / "phase_d"}
    test_path = manifest_roots[training_job["data_root"]] / training_job["test_data_path"]
    job_dir_rel = training_job["job_dir"] + ("" if seed is None else f"/seed_{seed}")
    job_dir = study / "phase_f" / job_dir_rel
    job_dir.mkdir(parents=True, exist_ok=True)
    job = {k: training_job[k] for k in ("dose", "view", "gridsize", "data_root", "test_data_path")}
    job.update(job_dir=job_dir_rel, engine="lsqml", engine_options={"noise_model": "poisson"}, epochs=3,
               batch_size=8, noise_model="poisson", device="cpu", duration_s=1.0, artifacts=[],
               reconstruction_path=None, reconstruction_sha256=None, reconstruction_size_bytes=None, metrics=None)
    if seed is not None:
        job["seed"] = seed
    with np.load(test_path, allow_pickle=False) as npz:
        patches, probe, truth = npz["Y"], npz["probeGuess"], npz["objectGuess"]
        y, x = npz["ycoords"], npz["xcoords"]
    job["n_patterns"] = int(len(y))
    if fail:
        job.update(status="failed", error=fail, wall_time_s=None)
        return job
    rng = np.random.default_rng(0 if seed is None else seed)
    noisy = patches * (1 + noise * rng.standard_normal(patches.shape)) * np.exp(
        1j * noise * rng.standard_normal(patches.shape))
    weight = np.abs(probe).astype(np.float64) ** 2
    image, summed = stitch(noisy.astype(np.complex64), y, x, truth.shape, weight)
    evaluation = score_stitched(image, summed, truth, float(weight.max()), EvaluationConfig())
    save_product(evaluation, test_path, job_dir / "reconstruction.h5", name=job_dir_rel)
    digest, size = sha256_file(job_dir / "reconstruction.h5")
    job.update(status="success", error=None, wall_time_s=0.5 + noise, reconstruction_path="reconstruction.h5",
               reconstruction_sha256=digest, reconstruction_size_bytes=size,
               artifacts=[{"path": "reconstruction.h5", "sha256": digest, "size_bytes": size}],
               metrics=evaluation.metrics())
    return job


def write_iterative_manifest(study: Path, jobs: list[dict[str, Any]], skipped: list[dict] | None = None) -> Path:
    from fly64_manifest import write_json

    return write_json(study / "phase_f" / "iterative_manifest.json", {
        "schema_version": "1.0", "kind": "iterative_manifest", "created": "2026-12-03T05:00:00Z",
        "producer": {"package": "fly64-iterative", "version": "0.1.0"},
        "roots": {"phase_c_root": "../phase_c", "phase_d_root": "../phase_d", "artifact_root": "."},
        "filters": {"dose": None, "view": None, "seeds": None}, "jobs": jobs, "skipped_views": skipped or []},
        "iterative_manifest")


@pytest.fixture
def study_copy(trained_study, tmp_path) -> Path:
    """A private copy of the trained study (Phase C/D linked, Phase E copied) to add a Phase F to."""
    root = tmp_path / "study"
    root.mkdir()
    for phase in ("phase_c", "phase_d"):
        (root / phase).symlink_to(trained_study / phase, target_is_directory=True)
    shutil.copytree(trained_study / "phase_e", root / "phase_e")
    return root


@pytest.fixture
def training_jobs():
    def read(study: Path) -> list[dict[str, Any]]:
        from fly64_manifest import read_json

        return read_json(study / "phase_e" / "training_manifest.json")["jobs"]
    return read


@pytest.fixture(scope="session")
def phase_f():
    """``phase_f.job(study, training_job, noise=...)`` and ``phase_f.write(study, jobs)``."""
    from types import SimpleNamespace

    return SimpleNamespace(job=iterative_job, write=write_iterative_manifest)


def refine_pinn(study: Path, dose: str, steps: int = 3) -> None:
    """Re-evaluate the Phase E jobs of ``dose`` with "PINN + refine", as ``fly64-train evaluate --refine-steps``."""
    from fly64_train.cli import main as train_main

    assert train_main(["evaluate", "--artifact-root", str(study / "phase_e"), "--dose", dose, "--device", "cpu",
                       "--refine-steps", str(steps), "--refine-lr", "1e-3"]) == 0


@pytest.fixture(scope="session")
def refine():
    """``refine(study, dose)``: record a real "PINN + refine" for that dose's PINN jobs of a study copy."""
    return refine_pinn
