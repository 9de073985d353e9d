"""The TensorFlow (Keras 3) backend: the torch PtychoPINN's architecture, physics and training in Keras.

Importing this package imports TensorFlow, so nothing outside it does. TensorFlow's C++ banner
and oneDNN notices are quieted here (``TF_CPP_MIN_LOG_LEVEL``) unless the user set the variable:
they say nothing a user of the study can act on. Keras is pinned to its TensorFlow backend
(``KERAS_BACKEND``) unless set otherwise, which :mod:`.model` then refuses with a clear error.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
