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
