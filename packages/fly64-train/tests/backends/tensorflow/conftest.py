"""TensorFlow tests share the machine with torch tests: one thread each, set before TF's runtime starts."""

from __future__ import annotations

import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
