"""Lazy ``tf.data`` pipelines over the project's numpy readers.

A generator reads one batch of groups at a time through
:class:`fly64_train.data.reader.ArrayReader` (``os.pread`` of the uncompressed NPZ
member), so peak memory holds a batch or two, never the dataset. The shuffling
order of epoch ``e`` is ``default_rng([seed, e]).permutation``: a resumed run
sees the same order an uninterrupted one would.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from fly64_data.grouping import Groups
from fly64_train.data.reader import ArrayReader


class EpochClock(keras.callbacks.Callback):
    """Tells the training pipeline which epoch it is feeding (set before the epoch's first batch)."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch


def group_batches(reader: ArrayReader, groups: Groups, batch_size: int, seed: int | None = None,
                  clock: EpochClock | None = None, max_batches: int | None = None) -> tf.data.Dataset:
    """Batches ``(diffraction (B, C, N, N) float32, offsets (B, C, 2) float32, group index (B,) int64)``.

    With ``seed`` (and the ``clock`` of the fit) each epoch visits the groups in its own
    seeded order; without, in file order (validation).
    """
    c, n = groups.group_size, int(reader.shape[-1])
    count = math.ceil(len(groups) / batch_size)
    count = count if max_batches is None else min(count, max_batches)

    def batches():
        order = np.arange(len(groups))
        if seed is not None:
            order = np.random.default_rng([seed, clock.epoch if clock else 0]).permutation(len(groups))
        for b in range(count):
            rows = order[b * batch_size:(b + 1) * batch_size]
            diffraction = reader.read_rows(groups.indices[rows].ravel()).reshape(len(rows), c, n, n)
            yield diffraction.astype(np.float32), groups.offsets[rows].astype(np.float32), rows.astype(np.int64)

    signature = (tf.TensorSpec((None, c, n, n), tf.float32), tf.TensorSpec((None, c, 2), tf.float32),
                 tf.TensorSpec((None,), tf.int64))
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    # Known length: Keras's progress bar shows it; one batch read ahead overlaps disk and compute.
    return dataset.apply(tf.data.experimental.assert_cardinality(count)).prefetch(1)
