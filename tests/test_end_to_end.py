"""Cross-package end-to-end: the console scripts chained as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SMALL = ["--patch-size", "32", "--object-size", "192", "--scan-step", "8"]


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
def phase_c(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study") / "phase_c"
    proc = _run("fly64-data", "generate", "--output-root", str(root), *SMALL)
    assert proc.returncode == 0, proc.stderr
    return root


def test_phase_c_outputs_validate_with_the_manifest_cli(phase_c):
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
