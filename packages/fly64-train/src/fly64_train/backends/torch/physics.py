"""Torch physics layers of PtychoPINN: the framework-free core on torch tensors.

Every function is :mod:`fly64_train.core.physics` (written once for every backend;
it recognises torch tensors and runs torch ops on them), so the torch and the
TensorFlow models cannot drift apart. Only the support mask is wrapped here, to come
back as a torch tensor of the model's dtype.
"""

from __future__ import annotations

import torch

from fly64_train.core import physics as core
from fly64_train.core.physics import *  # noqa: F403  (the core's __all__ is this backend's physics API)


def support_mask(n: int, fraction: float = 0.5, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Central square of side ``fraction * N`` (ones) in an N x N frame (zeros), as a torch tensor."""
    return torch.from_numpy(core.support_mask(n, fraction)).to(dtype)
