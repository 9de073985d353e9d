"""The TensorFlow (Keras 3) backend: the torch PtychoPINN's architecture, physics and training in Keras.

Importing this package imports TensorFlow, so nothing outside it does. TensorFlow's own log lines (the
absl banner, oneDNN notices, and ``E0000 ... oneDNN supports DT_INT32 only on platforms with AVX-512``,
which reads like an error and is not one) say nothing a user of the study can act on, so they are kept out
of our output unless ``--verbose`` (:data:`fly64_train.core.seam.FRAMEWORK_LOGS_ENV`) or the user's own
``TF_CPP_MIN_LOG_LEVEL`` asks for them: the level is 3 (C++ errors too: TensorFlow's real errors reach us
as Python exceptions), and the lines TensorFlow's C++ writes to the stderr descriptor while it loads,
before its logging honours any level, are filtered out of what the import wrote there. Keras is pinned to
its TensorFlow backend (``KERAS_BACKEND``) unless set otherwise, which :mod:`.model` then refuses with a
clear error.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

from fly64_train.core.seam import FRAMEWORK_LOGS_ENV

#: A line of TensorFlow's C++/absl logging: ``I0000 00:00:1796277654.082067   21140 port.cc:153] ...`` and
#: the absl notice that precedes the first of them.
FRAMEWORK_LOG_LINE = re.compile(r"([IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ ]+:\d+\] |WARNING: All log messages "
                                r"before absl::InitializeLog\(\) is called)")

_framework_logs = os.environ.get(FRAMEWORK_LOGS_ENV, "") not in ("", "0")
_user_level = "TF_CPP_MIN_LOG_LEVEL" in os.environ
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if _framework_logs else "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _import_tensorflow_quietly() -> None:
    """``import tensorflow`` with its C++ load-time log lines dropped from the stderr descriptor."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode(errors="replace").splitlines(keepends=True)
            # Anything else written meanwhile (a Python warning, a traceback's context) is ours to show.
            sys.stderr.write("".join(line for line in lines if not FRAMEWORK_LOG_LINE.match(line)))
            sys.stderr.flush()


if _framework_logs or _user_level or "tensorflow" in sys.modules:
    import tensorflow  # noqa: F401
else:
    _import_tensorflow_quietly()
