"""A torch-only session never imports TensorFlow (it costs seconds and gigabytes of address space)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from fly64_train import TrainConfig, load_bundle, train_job
from fly64_train.core.seam import get_backend
from fly64_train.cli import build_parser
import fly64_train.studies.runner, fly64_train.evaluation.evaluate, fly64_train.studies.report
backend = get_backend("torch")
build_parser()
print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
"""


def test_the_torch_backend_cli_runner_and_evaluation_import_no_tensorflow():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
