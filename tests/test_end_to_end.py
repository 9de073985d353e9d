"""Cross-package end-to-end: the console scripts chained as a user (and `make`) runs them.

Phase C -> Phase D -> Phase E on a tiny study written by the real writers, then
the downstream checks of fly64-manifest on what they produced.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SMALL = ["--patch-size", "32", "--object-size", "192", "--scan-step", "8"]
TINY_TRAIN = ["--max-epochs", "1", "--n-groups", "8", "--batch-size", "4", "--base-width", "4", "--deterministic"]


def _script(name: str) -> str:
    """A console script of the environment running the tests (the venv need not be on PATH)."""
    beside = Path(sys.executable).parent / name
    exe = str(beside) if beside.exists() else shutil.which(name)
    if exe is None:
        pytest.fail(f"console script {name} is not installed (run `make setup`)")
    return exe


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_script(args[0]), *args[1:]], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study")
    steps = [
        ("fly64-data", "generate", "--output-root", str(root / "phase_c"), *SMALL),
        ("fly64-overlap", "--phase-c-root", str(root / "phase_c"), "--output-root", str(root / "phase_d")),
        ("fly64-train", "--phase-c-root", str(root / "phase_c"), "--phase-d-root", str(root / "phase_d"),
         "--artifact-root", str(root / "phase_e"), "--dose", "1000", *TINY_TRAIN),
    ]
    for step in steps:
        proc = _run(*step)
        assert proc.returncode == 0, f"{step[0]} failed:\n{proc.stdout}\n{proc.stderr}"
    return root


def test_phase_c_outputs_validate_with_the_manifest_cli(study):
    phase_c = study / "phase_c"
    proc = _run("fly64-manifest", "validate", str(phase_c / "run_manifest.json"))
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((phase_c / "run_manifest.json").read_text())
    for rec in manifest["doses"]:
        for frec in rec["files"].values():
            path = phase_c / frec["path"]
            with np.load(path, allow_pickle=False) as npz:
                assert npz["diffraction"].shape[0] == frec["n_positions"]
            proc = _run("fly64-data", "validate", str(path))
            assert proc.returncode == 0, proc.stderr


def test_every_manifest_validates(study):
    for path in [study / "phase_c/run_manifest.json", study / "phase_d/overlap_manifest.json",
                 study / "phase_e/training_manifest.json", study / "phase_e/skip_summary.json",
                 *study.glob("phase_d/dose_*/*/*_metrics.json")]:
        proc = _run("fly64-manifest", "validate", str(path))
        assert proc.returncode == 0, f"{path}: {proc.stderr}"


def test_downstream_study_view_ties_the_phases_together(study):
    from fly64_manifest import Study

    s = Study(study)
    assert s.verify() == []
    jobs = {(job.dose, job.view): job for job in s.jobs}
    assert set(jobs) == {(1000.0, "baseline"), (1000.0, "dense"), (1000.0, "sparse")}
    for job in jobs.values():
        assert job.status == "success" and job.bundle_path.is_file()
        lineage = s.lineage(job)
        assert lineage is not None
    proc = _run("fly64-manifest", "verify", str(study))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _run("fly64-manifest", "summary", str(study), "--json")
    assert proc.returncode == 0 and len(json.loads(proc.stdout)) == 3


def test_verify_catches_a_modified_bundle(study, tmp_path):
    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    bundle = next(copy.glob("phase_e/dose_1000/baseline/gs1/wts.h5.zip"))
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bundle.write_bytes(bytes(data))
    proc = _run("fly64-manifest", "verify", str(copy))
    assert proc.returncode == 1
    assert "wts.h5.zip" in proc.stdout + proc.stderr and "sha256" in (proc.stdout + proc.stderr)


def test_phase_g_console_script_compares_the_study_and_reports_a_missing_phase_f(study, tmp_path):
    # As `make study` runs it last: Phase F not run is not an error, every iterative cell says so.
    out = tmp_path / "compare"
    proc = _run("fly64-compare", "run", "--phase-e-root", str(study / "phase_e"),
                "--phase-f-root", str(study / "phase_f"), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    md = (out / "comparison.md").read_text()
    assert "| 1000 | baseline | no: iterative not run |" in md and "iterative not run: no " in md
    module = subprocess.run([sys.executable, "-m", "fly64_compare", "run", "--phase-e-root", str(study / "phase_e"),
                             "--phase-f-root", str(study / "phase_f"), "--output", str(study / "phase_e" / "x")],
                            capture_output=True, text=True, check=False)
    assert module.returncode == 2 and "--phase-e-root" in module.stderr  # output inside an input root
