"""The import-linter contracts (.importlinter) hold on the tree, and a back arrow into the backends breaks them.

The second test copies fly64_train, adds one module that imports a backend from below it (evaluation,
bundle, core), and lints the copy: the contract must catch it, or it guards nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".importlinter"
TRAIN_SRC = ROOT / "packages" / "fly64-train" / "src" / "fly64_train"
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
        "sys.exit(lint_imports_command())", "--config", str(CONFIG), "--no-cache"]


def _lint(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    return subprocess.run(LINT, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=120)


def test_the_tree_keeps_every_contract(tmp_path):
    done = _lint(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]


@pytest.mark.parametrize("layer", ["evaluation", "bundle", "core"])
def test_a_layer_below_the_backends_importing_one_breaks_the_contract(tmp_path, layer):
    copy = tmp_path / "src"
    shutil.copytree(TRAIN_SRC, copy / "fly64_train", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "fly64_train" / layer / "_back_arrow.py").write_text("import fly64_train.backends.torch.backend\n")
    done = _lint(tmp_path, pythonpath=copy)
    assert done.returncode != 0
    assert f"fly64_train.{layer}._back_arrow -> fly64_train.backends.torch.backend" in done.stdout
