"""Keras weights in a bundle: one ``.weights.h5`` file per model, written and read through :mod:`fly64_train.bundle`.

Models in a TensorFlow bundle (the same two as in a torch bundle)
    ``diffraction_to_obj``: the CNN (diffraction -> object patches) and its input scale.
    ``forward_model``: the fixed probe (real and imaginary planes) and intensity scale.

The files are Keras 3's own HDF5 weights format, which h5py alone reads: no
unpickler, no code. The shared container checks size and sha256 of every member
before this module sees it; here each file's dataset layout is checked against
the architecture the manifest describes before Keras loads it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from fly64_train.backends.tensorflow.model import PtychoPINN
from fly64_train.backends.tensorflow.weights import SUFFIX, WeightsError, load_weights, save_weights
from fly64_train.bundle import BUNDLE_NAME, BundleError, WeightFile, format_major, write_model_bundle
from fly64_train.training.model_config import ModelConfig

__all__ = ["BUNDLE_NAME", "build_model", "save_bundle", "weight_files"]


def _parts(model: PtychoPINN) -> tuple[Any, Any]:
    return model.cnn, model.forward_model


def weight_files(model: PtychoPINN) -> list[WeightFile]:
    """The CNN and the forward model as Keras ``.weights.h5`` files."""
    files = []
    with tempfile.TemporaryDirectory() as tmp:
        for part in _parts(model):
            data = save_weights(part, Path(tmp) / f"{part.name}{SUFFIX}").read_bytes()
            files.append(WeightFile(part.name, f"models/{part.name}{SUFFIX}", data,
                                    {"n_tensors": len(part.weights),
                                     "n_parameters": int(sum(int(np.prod(w.shape)) for w in part.weights))}))
    return files


def save_bundle(model: PtychoPINN, path: str | os.PathLike, config: dict[str, Any] | None = None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``model`` as a format-2.0 bundle, atomically; returns ``path``, ``sha256`` and ``size_bytes``."""
    scale = float(model.forward_model.intensity_scale.numpy())
    return write_model_bundle(path, weight_files(model), backend="tensorflow", backend_version=tf.__version__,
                              model_config=model.cfg, intensity_scale=scale, config=config, provenance=extra)


def build_model(manifest: dict[str, Any], members: dict[str, bytes]) -> PtychoPINN:
    """The Keras :class:`PtychoPINN` a checked format-2 bundle describes."""
    if format_major(manifest) < 2:
        raise BundleError("format 1.x bundles hold torch weights only; this one names the tensorflow backend")
    files = {entry["name"]: entry["file"] for entry in manifest["models"]}
    try:
        cfg = ModelConfig.from_dict(manifest["model_config"])
        n = cfg.patch_size
        # Placeholders: the forward model's file holds the real probe and intensity scale.
        model = PtychoPINN(cfg, np.ones((n, n), np.complex64), 1.0)
    except (KeyError, ValueError, TypeError) as exc:
        raise BundleError(f"the manifest's model_config does not describe a model ({exc})") from None
    with tempfile.TemporaryDirectory() as tmp:
        for part in _parts(model):
            if part.name not in files:
                raise BundleError(f"manifest lists no {part.name!r} model")
            # Keras reads weights from a path only; the name is ours, never the member's.
            local = Path(tmp) / f"{part.name}{SUFFIX}"
            local.write_bytes(members[files[part.name]])
            try:
                load_weights(part, local)
            except WeightsError as exc:
                # The message names our scratch file; the user's name for it is the member.
                detail = str(exc).removeprefix(f"{local}: ")
                raise BundleError(f"model file {files[part.name]!r}: {detail}") from None
    return model
