"""Torch PtychoPINN weights -> the Keras model, for parity checks and for moving trained weights over.

Takes a torch ``state_dict`` already converted to numpy arrays (so this module needs no torch).
The two models hold the same layers in the same order; the only layout change is the
convolution kernel, OIHW in torch and HWIO in Keras. BatchNorm maps weight/bias/running
mean/running variance to gamma/beta/moving mean/moving variance. (The architecture has no
transposed convolutions: the decoders upsample by nearest-neighbour repetition.)
"""

from __future__ import annotations

import re
from collections import defaultdict

import keras
import numpy as np

from fly64_train.backends.tensorflow.model import ObjectCNN, PtychoPINN

_SEQUENTIALS = ("encoder", "amplitude", "phase")


def _torch_layers(state: dict[str, np.ndarray], prefix: str) -> list[dict[str, np.ndarray]]:
    """Parameter groups of ``prefix.<i>.*`` in module order (ReLU/pool/upsample hold none)."""
    groups: dict[int, dict[str, np.ndarray]] = defaultdict(dict)
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.(\w+)$")
    for key, value in state.items():
        match = pattern.match(key)
        if match:
            groups[int(match.group(1))][match.group(2)] = np.asarray(value)
    return [groups[i] for i in sorted(groups)]


def _assign(layer: keras.layers.Layer, params: dict[str, np.ndarray], where: str) -> None:
    if isinstance(layer, keras.layers.Conv2D):
        if "running_mean" in params:
            raise ValueError(f"{where}: torch has a BatchNorm where Keras has {layer.name}")
        values = [params["weight"].transpose(2, 3, 1, 0)]  # OIHW -> HWIO
        if layer.use_bias:
            values.append(params["bias"])
    elif isinstance(layer, keras.layers.BatchNormalization):
        if "running_mean" not in params:
            raise ValueError(f"{where}: torch has a convolution where Keras has {layer.name}")
        values = [params["weight"], params["bias"], params["running_mean"], params["running_var"]]
    else:
        raise ValueError(f"{where}: unexpected layer {layer.name}")
    shapes = [tuple(w.shape) for w in layer.get_weights()]
    if shapes != [v.shape for v in values]:
        raise ValueError(f"{where}: torch shapes {[v.shape for v in values]} do not fit {layer.name} {shapes}")
    layer.set_weights(values)


def load_torch_cnn_state(cnn: ObjectCNN, state: dict[str, np.ndarray], prefix: str = "") -> None:
    """Copy a torch ``ObjectCNN`` state dict (numpy values; keys under ``prefix``) into ``cnn``."""
    for name in _SEQUENTIALS:
        keras_layers = [layer for layer in getattr(cnn, name).layers
                        if isinstance(layer, (keras.layers.Conv2D, keras.layers.BatchNormalization))]
        torch_layers = _torch_layers(state, f"{prefix}{name}")
        if len(keras_layers) != len(torch_layers):
            raise ValueError(f"{name}: torch has {len(torch_layers)} parametrised layers, Keras {len(keras_layers)}")
        for i, (layer, params) in enumerate(zip(keras_layers, torch_layers, strict=True)):
            _assign(layer, params, f"{name}[{i}]")
    cnn.input_scale.assign(float(state[f"{prefix}input_scale"]))


def load_torch_state(model: PtychoPINN, state: dict[str, np.ndarray]) -> None:
    """Copy a torch ``PtychoPINN`` state dict (numpy values) into the Keras ``model``."""
    load_torch_cnn_state(model.cnn, state, prefix="cnn.")
    probe = np.asarray(state["probe"])
    model.forward_model.probe_planes.assign(np.stack([probe.real, probe.imag]).astype(np.float32))
    model.forward_model.intensity_scale.assign(float(state["intensity_scale"]))
