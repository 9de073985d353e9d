"""Phase E of the fly64 study: PtychoPINN training, one job at a time.

Public entry points: :func:`train_job` (one dose x view job), :func:`save_bundle`
/ :func:`load_bundle` (the ``wts.h5.zip`` format) and the configuration
dataclasses :class:`TrainConfig` and :class:`ModelConfig`. They are imported
on first use so that ``import fly64_train`` (and ``--help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "BundleError": "fly64_train.backends.torch.bundle",
    "load_bundle": "fly64_train.backends.torch.bundle",
    "save_bundle": "fly64_train.backends.torch.bundle",
    "TrainConfig": "fly64_train.training.config",
    "train_job": "fly64_train.backends.torch.train",
    "ModelConfig": "fly64_train.training.model_config",
    "PtychoPINN": "fly64_train.backends.torch.model",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fly64_train' has no attribute {name!r}")
