"""The TensorFlow backend's checkpoints: Keras callbacks that replace their file by rename instead of writing into it.

Keras' own ``ModelCheckpoint`` and ``CSVLogger`` open their path for writing, so a
symbolic link planted at ``checkpoints/best.weights.h5`` or ``logs/metrics.csv``
would have Keras overwrite whatever it points at. These write a temporary file in
the same folder and rename it over the path (the rename replaces a link, never
its target), as every other file of a job is written.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import keras

from fly64_manifest import atomic_write
from fly64_train.backends.tensorflow.weights import save_weights


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint(save_weights_only=True)`` whose file is written by :func:`save_weights` (temp + rename)."""

    def _save_model(self, epoch: int, batch: int | None, logs: dict | None) -> None:
        # Keras decides when (best so far, per its monitor); only the write itself is ours.
        filepath = self._get_file_path(epoch, batch, logs)
        if self._should_save_model(epoch, batch, logs, filepath):
            save_weights(self.model, filepath)


class AtomicCSVLogger(keras.callbacks.Callback):
    """Keras ``CSVLogger``'s file (``epoch`` then the sorted log keys), rewritten whole by rename each epoch.

    With ``append`` the rows of an existing regular file are kept (a resume);
    a link at the path is never read from or written through.
    """

    def __init__(self, path: str | os.PathLike, append: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.append = append
        self.header: list[str] | None = None
        self.rows: list[dict[str, Any]] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.header, self.rows = None, []
        if self.append and self.path.is_file() and not self.path.is_symlink():
            with self.path.open(newline="") as fh:
                reader = csv.DictReader(fh)
                self.header = list(reader.fieldnames or []) or None
                self.rows = list(reader)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.header is None:
            self.header = ["epoch", *sorted(logs)]
        self.rows.append({"epoch": epoch, **{k: _value(logs.get(k, "NA")) for k in self.header if k != "epoch"}})
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=self.header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        with atomic_write(self.path) as fh:
            fh.write(text.getvalue())


def _value(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, Iterable) and not hasattr(value, "shape"):
        return f'"[{", ".join(map(str, value))}]"'
    return float(value) if hasattr(value, "shape") or isinstance(value, (int, float)) else value
