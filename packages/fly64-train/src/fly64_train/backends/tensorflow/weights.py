"""Keras weights as HDF5 ``.weights.h5`` files: written atomically, checked before loading.

The file is Keras 3's own weights format (datasets under ``<layer path>/vars/<i>``), which
h5py alone reads: no pickle, no code, no Keras needed to inspect it. Before Keras loads a
file, its dataset layout (names, shapes, dtypes) is compared with the layout the model
itself writes, so weights of another architecture are refused with one line instead of
Keras's multi-line partial-load report. A compiled model's file carries the optimizer's
state too (Keras writes it under ``optimizer/``), which is what resuming needs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import h5py
import keras
import numpy as np

from fly64_train.backends.tensorflow.model import PtychoPINN
from fly64_train.training.model_config import ModelConfig

SUFFIX = ".weights.h5"

#: name -> (shape, dtype) of every dataset of an HDF5 file.
Layout = dict[str, tuple[tuple[int, ...], str]]


class WeightsError(ValueError):
    """A weights file is missing, unreadable, or does not fit the model."""


def read_layout(path: str | os.PathLike) -> Layout:
    """Names, shapes and dtypes of every dataset of an HDF5 file (read with h5py alone)."""
    layout: Layout = {}

    def visit(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset):
            # External storage and virtual datasets read bytes from other files named inside this one:
            # a weights file we trust no further than its own bytes must hold its data itself.
            if obj.external or obj.is_virtual:
                kind = "HDF5 external storage" if obj.external else "an HDF5 virtual dataset"
                raise WeightsError(f"{path}: dataset {name!r} uses {kind} (data in other files); refused")
            layout[name] = (tuple(obj.shape), obj.dtype.str)

    try:
        with h5py.File(path, "r") as fh:
            fh.visititems(visit)
    except (OSError, ValueError) as exc:
        if isinstance(exc, WeightsError):
            raise
        raise WeightsError(f"{path}: not a readable HDF5 weights file ({exc})") from None
    return layout


def save_weights(model: keras.Model, path: str | os.PathLike) -> Path:
    """Write ``model``'s weights to ``path`` (``*.weights.h5``) atomically; returns the path."""
    path = Path(path)
    if not path.name.endswith(SUFFIX):
        raise ValueError(f"{path}: Keras weights files end in {SUFFIX}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:-len(SUFFIX)]}.", suffix=f".tmp{SUFFIX}", dir=path.parent)
    os.close(fd)
    try:
        model.save_weights(tmp, overwrite=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def model_layout(model: keras.Model) -> Layout:
    """The layout ``model`` writes (saved to a scratch file and read back)."""
    with tempfile.TemporaryDirectory() as tmp:
        return read_layout(save_weights(model, Path(tmp) / f"model{SUFFIX}"))


def load_weights(model: keras.Model, path: str | os.PathLike) -> None:
    """Load ``path`` into ``model`` after checking that every dataset fits it."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    got, want = read_layout(path), model_layout(model)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not optimizer.built:
        # A compiled model's file also holds its optimizer's state (under optimizer/), which
        # a model without a built optimizer (inference) neither needs nor writes.
        got = {k: v for k, v in got.items() if not k.startswith("optimizer/")}
    if got != want:
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        wrong = sorted(k for k in set(got) & set(want) if got[k] != want[k])
        detail = (f"missing {missing[0]!r}" if missing else f"unexpected {extra[0]!r}" if extra
                  else f"{wrong[0]!r} has shape/dtype {got[wrong[0]]}, the model needs {want[wrong[0]]}")
        count = len(missing) + len(extra) + len(wrong)
        raise WeightsError(f"{path}: weights do not fit the {model.name} architecture ({count} dataset(s) differ; "
                           f"first: {detail})")
    model.load_weights(path)


def load_model(weights_path: str | os.PathLike, model_config: ModelConfig) -> PtychoPINN:
    """A :class:`PtychoPINN` for inference from a whole-model weights file (CNN, probe and scale).

    Its ``predict_object(diffraction, offsets=None)`` returns complex64 numpy object patches.
    """
    n = model_config.patch_size
    # Placeholders: the file holds the real probe, intensity scale and input scale.
    model = PtychoPINN(model_config, np.ones((n, n), np.complex64), 1.0)
    load_weights(model, weights_path)
    return model
