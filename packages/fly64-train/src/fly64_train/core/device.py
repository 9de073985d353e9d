"""The device vocabulary every backend accepts, checked before any framework is imported.

Evaluation and the CLI check a device name here; a backend maps the checked name to its framework's
device (torch ``cuda:K``, TensorFlow ``/GPU:K``). The training accelerator (``--accelerator``), the
evaluation device (``evaluate --device``) and the iterative baseline's ``--device`` are all names of
this one vocabulary. ``cuda`` is the one canonical spelling of a GPU (it is torch's, and what a
checked name is reported and recorded as); ``gpu`` stays accepted as input, an alias mapped here alone.
"""

from __future__ import annotations

import re

#: Device names every backend accepts: ``auto`` (a GPU when the framework sees one), ``cpu``, and the
#: K-th GPU as ``cuda:K`` or ``gpu:K`` (``cuda``/``gpu`` alone: the first). ASCII digits, no leading zeros.
DEVICE_PATTERN = re.compile(r"auto|cpu|(cuda|gpu)(:(0|[1-9][0-9]*))?", re.ASCII)
#: The canonical device kinds, without a GPU index: what a whole job runs on.
DEVICE_KINDS = ("auto", "cpu", "cuda")
#: Other spellings of a device kind, accepted where they always were (``--accelerator gpu``, ``gpu:K``).
DEVICE_ALIASES = {"gpu": "cuda"}
#: The kinds a training job may ask for (``--accelerator``), in the order the CLI has always listed them.
ACCELERATORS = ("auto", "cpu", "gpu", "cuda")


def check_device(device: str) -> tuple[str, int | None]:
    """``(kind, gpu index)`` of a device name: ``("auto", None)``, ``("cpu", None)`` or ``("cuda", K)``
    (``gpu``/``gpu:K`` too: the kind is always a canonical one of :data:`DEVICE_KINDS`).

    Raises ValueError naming the accepted forms for anything else (``CUDA``, ``mps``, ``cuda:00``, ...).
    """
    if not isinstance(device, str) or not DEVICE_PATTERN.fullmatch(device):
        raise ValueError(f"device must be auto, cpu, cuda, cuda:K, gpu or gpu:K, got {device!r}")
    if device in ("auto", "cpu"):
        return device, None
    kind, _, index = device.partition(":")
    return DEVICE_ALIASES.get(kind, kind), int(index or 0)


def normal_device(device: str) -> str:
    """The canonical spelling of a device name: ``gpu`` -> ``cuda``, ``gpu:K`` -> ``cuda:K``, others unchanged.

    Raises ValueError (as :func:`check_device`) for a name outside the vocabulary.
    """
    kind, _ = check_device(device)
    _, sep, index = device.partition(":")
    return kind + sep + index
