"""Torch-side bundle entry points, kept where ``train.py`` and torch users import them.

The container, manifest and checks live in :mod:`fly64_train.bundle`; the torch
weight format in :mod:`fly64_train.backends.torch.weights`.
"""

from __future__ import annotations

import os

from fly64_train.backends.torch.model import PtychoPINN
from fly64_train.backends.torch.weights import BUNDLE_NAME, BundleError, save_bundle
from fly64_train.bundle import read_manifest

__all__ = ["BUNDLE_NAME", "BundleError", "load_bundle", "read_manifest", "save_bundle"]


def load_bundle(path: str | os.PathLike, map_location: str = "cpu", *,
                expected_sha256: str | None = None) -> PtychoPINN:
    """A torch bundle as the :class:`PtychoPINN` itself (eval mode), for code that wants torch tensors.

    Framework-free code uses :func:`fly64_train.load_bundle`, which returns a numpy ``LoadedModel``.
    """
    from fly64_train.bundle import load_bundle as load_any

    loaded = load_any(path, expected_sha256=expected_sha256, device=str(map_location))
    model = getattr(loaded, "model", None)
    if not isinstance(model, PtychoPINN):
        raise BundleError(f"{path}: not a torch bundle; use fly64_train.load_bundle for other backends")
    return model
