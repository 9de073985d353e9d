"""Where the TensorFlow backend runs a model: the seam's device names in TensorFlow's spelling
(the mirror of :mod:`fly64_train.backends.torch.device`)."""

from __future__ import annotations

import tensorflow as tf

from fly64_train.core.device import check_device


def tf_device(device: str) -> str:
    """TensorFlow's name for a seam device name (:func:`fly64_train.core.device.check_device`).

    ``auto`` is the first GPU TensorFlow sees, else the CPU. A GPU TensorFlow does not see is a
    ValueError naming the device, as in torch (TensorFlow would otherwise fall back to the CPU unasked).
    """
    kind, index = check_device(device)
    gpus = len(tf.config.list_physical_devices("GPU"))
    if kind == "auto":
        return "/GPU:0" if gpus else "/CPU:0"
    if kind == "cpu":
        return "/CPU:0"
    if index >= gpus:
        raise ValueError(f"device {device!r} asked for, but TensorFlow sees {gpus} GPU(s) on this machine")
    return f"/GPU:{index}"
