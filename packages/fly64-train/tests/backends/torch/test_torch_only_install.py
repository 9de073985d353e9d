"""A torch-only install (``fly64-train[torch]``: no TensorFlow, Keras or Dask) runs the torch study.

The study runs in a subprocess whose ``sitecustomize`` (on ``PYTHONPATH``) replaces ``sys.path``'s finder
with one that does not see tensorflow, keras, dask, distributed, dask_jobqueue and bokeh, as in an
environment without them: ``importlib.util.find_spec`` gives None and any import of them fails. A real tiny run (one
baseline job, one epoch, evaluated) must succeed, and the missing extras must be named in one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

BLOCKER = '''
import sys
from importlib.machinery import PathFinder

NOT_INSTALLED = {"tensorflow", "keras", "dask", "distributed", "dask_jobqueue", "bokeh"}


class WithoutExtras(PathFinder):
    """sys.path's finder, blind to these top-level packages: find_spec gives None, import fails."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in NOT_INSTALLED:
            return None
        return super().find_spec(name, path, target)


sys.meta_path[:] = [WithoutExtras if finder is PathFinder else finder for finder in sys.meta_path]
'''

STUDY = '''
import sys

try:
    import tensorflow  # noqa: F401
except ModuleNotFoundError:
    pass
else:
    sys.exit("the blocker is not active")
from fly64_train.cli import main

roots = ["--phase-c-root", sys.argv[1] + "/phase_c", "--phase-d-root", sys.argv[1] + "/phase_d"]
tiny = ["--dose", "1000", "--view", "baseline", "--gridsize", "1", "--max-epochs", "1", "--n-groups", "8",
        "--batch-size", "4", "--base-width", "4", "--deterministic"]
code = main(["run", *roots, "--artifact-root", sys.argv[2], *tiny])
print("exit", code, flush=True)
for backend_or_executor in (["--backend", "tensorflow"], ["--executor", "dask"]):
    main(["run", *roots, "--artifact-root", sys.argv[2] + "_other", *tiny, *backend_or_executor])
print("modules", sorted(m for m in ("tensorflow", "keras", "dask", "distributed") if m in sys.modules))
'''


# A real training and evaluation in a fresh interpreter (about 13 s on 2 cores): the slow session and
# `nox -s torch_only` run it.
@pytest.mark.slow
def test_a_torch_only_install_runs_and_evaluates_the_torch_study(tiny_study_data, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    artifact = tmp_path / "phase_e"
    done = subprocess.run([sys.executable, "-c", STUDY, str(tiny_study_data), str(artifact)], env=env,
                          capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "exit 0" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "modules []"
    (job,) = json.loads((artifact / "training_manifest.json").read_text())["jobs"]
    assert job["result"]["status"] == "success"
    assert job["result"]["metrics"]["amplitude"]  # evaluated: the bundle was loaded and scored without TensorFlow
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert any("install fly64-train[tensorflow]" in line for line in errors), done.stderr[-3000:]
    assert any("install fly64-train[dask]" in line for line in errors), done.stderr[-3000:]
