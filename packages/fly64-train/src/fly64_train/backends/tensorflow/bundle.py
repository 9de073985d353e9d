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
from fly64_train.backends.tensorflow.weights import SUFFIX, WeightsError, load_weights, read_layout, save_weights
from fly64_train.bundle import BUNDLE_NAME, BundleError, BundleManifest, WeightFile, format_major, write_model_bundle
from fly64_train.training.recorded import recorded_configs

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


def build_model(manifest: BundleManifest, members: dict[str, bytes]) -> PtychoPINN:
    """The Keras :class:`PtychoPINN` a checked format-2 bundle describes.

    Every recorded key is checked first, then each file's HDF5 header (no external storage; at least
    as many values as the config's convolution kernels need), so no model bigger than its weights is
    built; after loading, every value is finite and the intensity scale is the manifest's.
    """
    if format_major(manifest) < 2:
        raise BundleError("format 1.x bundles hold torch weights only; this one names the tensorflow backend")
    try:
        recorded = recorded_configs(manifest)
    except ValueError as exc:
        raise BundleError(str(exc)) from None
    cfg = recorded.model
    files = {entry.name: entry.file for entry in manifest.models}
    for name in ("diffraction_to_obj", "forward_model"):
        if name not in files:
            raise BundleError(f"manifest lists no {name!r} model")
    with tempfile.TemporaryDirectory() as tmp:
        local = {}
        for name in ("diffraction_to_obj", "forward_model"):
            # Keras reads weights from a path only; the name is ours, never the member's.
            local[name] = Path(tmp) / f"{name}{SUFFIX}"
            local[name].write_bytes(members[files[name]])
            try:
                layout = read_layout(local[name])
            except WeightsError as exc:
                raise BundleError(f"model file {files[name]!r}: {str(exc).removeprefix(f'{local[name]}: ')}") from None
            if name == "diffraction_to_obj":
                held = sum(int(np.prod(shape)) for shape, _ in layout.values())
                needed = cfg.conv_kernel_elements()
                if held < needed:
                    raise BundleError(f"model file {files[name]!r}: weights do not fit the diffraction_to_obj "
                                      f"architecture: the file holds {held} values, the manifest's model_config "
                                      f"needs {needed} for its convolution kernels alone; refused before building")
        try:
            n = cfg.patch_size
            # Placeholders: the forward model's file holds the real probe and intensity scale.
            model = PtychoPINN(cfg, np.ones((n, n), np.complex64), 1.0)
        except (KeyError, ValueError, TypeError) as exc:
            raise BundleError(f"the manifest's model_config does not describe a model ({exc})") from None
        for part in _parts(model):
            try:
                load_weights(part, local[part.name])
            except WeightsError as exc:
                # The message names our scratch file; the user's name for it is the member.
                detail = str(exc).removeprefix(f"{local[part.name]}: ")
                raise BundleError(f"model file {files[part.name]!r}: {detail}") from None
    _check_values(model, recorded.intensity_scale, files)
    return model


def _check_values(model: PtychoPINN, intensity_scale: float, files: dict[str, str]) -> None:
    """Every weight finite; the physics' values those the manifest records."""
    for part in _parts(model):
        for weight in part.weights:
            if not np.isfinite(np.asarray(weight.numpy())).all():
                raise BundleError(f"model file {files[part.name]!r}: dataset {weight.path!r} holds NaN or "
                                  "infinite values")
    scale = float(model.forward_model.intensity_scale.numpy())
    if scale != float(np.float32(intensity_scale)):
        raise BundleError(f"model file {files['forward_model']!r}: intensity_scale is {scale}, the manifest's "
                          f"intensity_scale is {intensity_scale}")
    if not float(np.sum(np.asarray(model.forward_model.probe_planes.numpy(), np.float64) ** 2)) > 0:
        raise BundleError(f"model file {files['forward_model']!r}: the probe is identically zero")
    if not float(model.cnn.input_scale.numpy()) > 0:
        raise BundleError(f"model file {files['diffraction_to_obj']!r}: input_scale must be positive")
