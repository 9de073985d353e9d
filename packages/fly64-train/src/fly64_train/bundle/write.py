"""Writing a bundle: the manifest describing the weight files, then the container holding them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from fly64_train.bundle.container import BundleFile, WeightFile, write_container
from fly64_train.bundle.manifest import BundleHeader, manifest_json

if TYPE_CHECKING:
    from fly64_train.training.model_config import ModelConfig


def write_bundle(path: str | os.PathLike, header: BundleHeader, files: list[WeightFile]) -> BundleFile:
    """Write a format-2.0 bundle atomically; the result describes the final bytes on disk."""
    from fly64_train import __version__

    return write_container(path, manifest_json(header, files, __version__), files)


def write_model_bundle(path: str | os.PathLike, files: list[WeightFile], *, backend: str, backend_version: str,
                       model_config: ModelConfig, intensity_scale: float, config: dict[str, Any] | None = None,
                       provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """A trained model's bundle, whatever framework wrote ``files``: ``{"path", "sha256", "size_bytes"}``.

    The header is the model's (patch size, gridsize and config from ``model_config``, the fixed
    ``intensity_scale``) plus the training ``config`` and ``provenance``
    (:func:`fly64_train.training.provenance.bundle_provenance`), recorded as JSON.
    """
    header = BundleHeader(backend=backend, backend_version=backend_version, patch_size=model_config.patch_size,
                          gridsize=model_config.gridsize, intensity_scale=float(intensity_scale),
                          model_config=model_config.to_dict(), config=config or {}, provenance=provenance or {})
    written = write_bundle(path, header, files)
    return {"path": str(written.path), "sha256": written.sha256, "size_bytes": written.size_bytes}
