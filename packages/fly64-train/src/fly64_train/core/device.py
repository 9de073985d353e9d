"""The device vocabulary every backend accepts, checked before any framework is imported.

Evaluation and the CLI check a device name here; a backend maps the checked name to its framework's
device (torch ``cuda:K``, TensorFlow ``/GPU:K``).
"""

from __future__ import annotations

import re

#: Device names every backend accepts: ``auto`` (a GPU when the framework sees one), ``cpu``, and the
#: K-th GPU as ``cuda:K`` or ``gpu:K`` (``cuda``/``gpu`` alone: the first). ASCII digits, no leading zeros.
DEVICE_PATTERN = re.compile(r"auto|cpu|(cuda|gpu)(:(0|[1-9][0-9]*))?", re.ASCII)


def check_device(device: str) -> tuple[str, int | None]:
    """``(kind, gpu index)`` of a device name: ``("auto", None)``, ``("cpu", None)`` or ``("gpu", K)``.

    Raises ValueError naming the accepted forms for anything else (``CUDA``, ``mps``, ``cuda:00``, ...).
    """
    if not isinstance(device, str) or not DEVICE_PATTERN.fullmatch(device):
        raise ValueError(f"device must be auto, cpu, cuda, cuda:K, gpu or gpu:K, got {device!r}")
    if device in ("auto", "cpu"):
        return device, None
    _, _, index = device.partition(":")
    return "gpu", int(index or 0)
