"""Writing a bundle: the manifest describing the weight files, then the container holding them."""

from __future__ import annotations

import os

from fly64_train.bundle.container import BundleFile, WeightFile, write_container
from fly64_train.bundle.manifest import BundleHeader, manifest_json


def write_bundle(path: str | os.PathLike, header: BundleHeader, files: list[WeightFile]) -> BundleFile:
    """Write a format-2.0 bundle atomically; the result describes the final bytes on disk."""
    from fly64_train import __version__

    return write_container(path, manifest_json(header, files, __version__), files)
