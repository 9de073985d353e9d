"""The ``wts.h5.zip`` bundle for the TensorFlow backend: manifest plus Keras HDF5 weights.

Members: ``manifest.json`` (validated against fly64-manifest's ``bundle_manifest``),
``models/diffraction_to_obj.weights.h5`` (the CNN) and ``models/forward_model.weights.h5``
(the probe and intensity scale), the same two models as the torch bundle. No member
is read by an unpickler. The format version stays that of the current schema until
the lead's format-2.0 bundle work lands (docs/decisions.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from fly64_data.contract import sha256_file
from fly64_train import __version__
from fly64_train.backends.tensorflow.model import PtychoPINN
from fly64_train.backends.tensorflow.weights import SUFFIX, save_weights
from fly64_train.backends.torch.bundle import BUNDLE_NAME, FORMAT, FORMAT_VERSION, MANIFEST_NAME

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)

__all__ = ["BUNDLE_NAME", "save_bundle_tf"]


def _weights_bytes(model: keras.Model) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return save_weights(model, Path(tmp) / f"{model.name}{SUFFIX}").read_bytes()


def save_bundle_tf(model: PtychoPINN, path: str | os.PathLike, config: dict[str, Any] | None = None,
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``model`` as a bundle, atomically; returns ``path``, ``sha256`` and ``size_bytes``."""
    from fly64_manifest import validate

    path = Path(path)
    members: dict[str, bytes] = {}
    models = []
    for part in (model.cnn, model.forward_model):
        data = _weights_bytes(part)
        file = f"models/{part.name}{SUFFIX}"
        members[file] = data
        models.append({"name": part.name, "file": file, "sha256": hashlib.sha256(data).hexdigest(),
                       "size_bytes": len(data), "n_tensors": len(part.weights),
                       "n_parameters": int(sum(int(tf.size(w)) for w in part.weights))})
    cfg = model.cfg
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "backend": "tensorflow",
        "backend_version": tf.__version__, "producer": {"package": "fly64-train", "version": __version__},
        "models": models, "N": cfg.patch_size, "gridsize": cfg.gridsize,
        "intensity_scale": float(model.forward_model.intensity_scale.numpy()),
        "model_config": cfg.to_dict(), "config": config or {}, "provenance": extra or {},
    }
    validate(manifest, "bundle_manifest", source=f"{path}:{MANIFEST_NAME}")
    members = {MANIFEST_NAME: (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(), **members}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for name, data in members.items():
                    zf.writestr(zipfile.ZipInfo(name, date_time=_FIXED_TIME), data, zipfile.ZIP_DEFLATED)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {"path": str(path), "sha256": sha256_file(path), "size_bytes": path.stat().st_size}
