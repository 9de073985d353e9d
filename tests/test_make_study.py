"""What `make study` runs for Phase D: the probe spacing basis with equal-positions controls (issue 23 §3)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _dry_run(tmp_path: Path, *extra: str) -> list[str]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(["make", "-n", "study", f"ROOT={tmp_path / 'study'}", *extra], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.split() and line.split()[0].endswith("/fly64-overlap")]


def test_make_study_builds_probe_basis_views_with_controls_matched_to_sparse(tmp_path):
    (line,) = _dry_run(tmp_path)
    assert "--spacing-basis probe" in line and "--match-positions sparse" in line


def test_overlap_args_can_restore_the_designs_patch_basis(tmp_path):
    (line,) = _dry_run(tmp_path, "OVERLAP_ARGS=")
    assert "--spacing-basis" not in line and "--match-positions" not in line


def _tools(tmp_path: Path, *extra: str) -> list[list[str]]:
    """The pipeline's console-script lines of `make -n study` (the recursive `make compare` included)."""
    out = subprocess.run(["make", "-n", "study", f"ROOT={tmp_path / 'study'}", *extra], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    return [line.split() for line in out.splitlines()
            if line.split() and Path(line.split()[0]).name.startswith("fly64-")]


def test_make_study_runs_phase_g_last_on_the_backends_phase_e_and_phase_f(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    study = tmp_path / "study"
    for backend, suffix in (("torch", ""), ("tensorflow", "_tensorflow")):
        tools = _tools(tmp_path, f"BACKEND={backend}")
        assert [Path(t[0]).name for t in tools][-2:] == ["fly64-iterative", "fly64-compare"]
        assert tools[-1][1:] == ["run", "--phase-e-root", f"{study}/phase_e{suffix}", "--phase-f-root",
                                 f"{study}/phase_f", "--output", f"{study}/compare{suffix}"]
