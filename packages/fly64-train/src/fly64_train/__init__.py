"""Phase E of the fly64 study: PtychoPINN training, one job at a time.

Public entry points: :func:`train_job` (one dose x view job, on the backend its
config names), :func:`save_bundle` (torch) / :func:`load_bundle` (any backend;
the ``wts.h5.zip`` format) and the configuration dataclasses
:class:`TrainConfig` and :class:`ModelConfig`. Everything is imported on first
use so that ``import fly64_train`` (and ``--help``) stays fast and a session
that never trains imports no framework.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fly64_train.training.config import TrainConfig
    from fly64_train.training.result import TrainResult

__version__ = "0.5.0"

_EXPORTS = {
    "BundleError": "fly64_train.bundle",
    "load_bundle": "fly64_train.bundle",
    "save_bundle": "fly64_train.backends.torch.bundle",
    "TrainConfig": "fly64_train.training.config",
    "ModelConfig": "fly64_train.training.model_config",
    "PtychoPINN": "fly64_train.backends.torch.model",
}

__all__ = [*sorted([*_EXPORTS, "train_job"]), "__version__"]


def train_job(config: TrainConfig) -> TrainResult:
    """Train one job on the backend ``config.backend`` names (``torch`` when the config has no such field)."""
    from fly64_train.core.seam import get_backend

    return get_backend(getattr(config, "backend", "torch")).train(config)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fly64_train' has no attribute {name!r}")
