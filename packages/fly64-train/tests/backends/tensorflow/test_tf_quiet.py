"""TensorFlow's own log lines stay out of our output unless asked for (``--verbose``).

Without it, a process that loads the backend and trains sees none of TensorFlow's C++/absl lines on
stderr (the load-time banner, oneDNN notices, ``E0000 ... oneDNN supports DT_INT32 only on platforms with
AVX-512``); with ``--verbose`` (or the user's own ``TF_CPP_MIN_LOG_LEVEL``) they are there.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("tensorflow")

from fly64_train.backends.tensorflow import FRAMEWORK_LOG_LINE  # noqa: E402
from fly64_train.core.seam import FRAMEWORK_LOGS_ENV  # noqa: E402

LOAD = """
import sys
from fly64_train.core.seam import get_backend
get_backend("tensorflow")
import tensorflow as tf
print("sum", float(tf.reduce_sum(tf.constant([1.0, 2.0]))), file=sys.stderr)
"""


def _framework_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if FRAMEWORK_LOG_LINE.match(line)]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", FRAMEWORK_LOGS_ENV)}
    return {**env, **extra}


def test_the_line_pattern_is_tensorflows():
    for line in ("I0000 00:00:1796277654.082067   21140 port.cc:153] oneDNN custom operations are on.",
                 "E0000 00:00:1796277665.632219   21140 util.cc:131] oneDNN supports DT_INT32 only on platforms "
                 "with AVX-512.",
                 "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"):
        assert FRAMEWORK_LOG_LINE.match(line)
    for ours in ("fly64-train: error: x", "Traceback (most recent call last):", "W0 is not a log line"):
        assert not FRAMEWORK_LOG_LINE.match(ours)


def test_loading_the_backend_writes_none_of_tensorflows_lines_unless_asked():
    quiet = subprocess.run([sys.executable, "-c", LOAD], env=_env(), capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "sum 3.0" in quiet.stderr  # our own stderr output still comes through
    assert _framework_lines(quiet.stderr) == [], quiet.stderr
    loud = subprocess.run([sys.executable, "-c", LOAD], env=_env(**{FRAMEWORK_LOGS_ENV: "1"}), capture_output=True,
                          text=True, timeout=300)
    assert loud.returncode == 0, loud.stderr[-2000:]
    assert _framework_lines(loud.stderr), "TensorFlow wrote no log line even when asked: nothing was tested"


@pytest.mark.slow
def test_a_tensorflow_training_prints_no_framework_line_and_verbose_shows_them(tiny_npz, tmp_path):
    args = ["train-one", "--train", str(tiny_npz), "--backend", "tensorflow", "--max-epochs", "1", "--n-groups",
            "8", "--batch-size", "4", "--base-width", "4"]
    runs = {}
    for flag in ("", "--verbose"):
        job = tmp_path / (flag.strip("-") or "quiet")
        runs[flag] = subprocess.run([sys.executable, "-m", "fly64_train.cli", *args, "--job-dir", str(job),
                                     *filter(None, [flag])], env=_env(), capture_output=True, text=True,
                                    timeout=600)
        assert runs[flag].returncode == 0, runs[flag].stderr[-3000:]
    assert _framework_lines(runs[""].stderr) == [], runs[""].stderr
    assert any("DT_INT32" in line or "oneDNN" in line for line in _framework_lines(runs["--verbose"].stderr))
