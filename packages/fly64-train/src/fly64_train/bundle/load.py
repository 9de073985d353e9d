"""Reading a bundle: checked members, then the model, built by the backend the manifest names."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fly64_train.bundle.container import BundleError, ContainerReader
from fly64_train.bundle.manifest import BundleManifest, parse_manifest

if TYPE_CHECKING:
    from fly64_train.core.seam import LoadedModel


@dataclass(frozen=True)
class BundleContents:
    """A bundle's checked manifest and weight files (nothing in it has been interpreted as a model yet)."""

    path: Path
    """The bundle file."""
    manifest: BundleManifest
    """The schema-valid manifest, typed."""
    members: dict[str, bytes] = field(repr=False)
    """Weight file member name -> bytes, each matching its manifest sha256 and size."""


def read_manifest(path: str | os.PathLike) -> BundleManifest:
    """The validated inner manifest of a bundle (its weight files are not read)."""
    path = Path(path)
    with ContainerReader(path) as zf:
        return parse_manifest(zf.read_manifest_bytes(), str(path))


def read_bundle(path: str | os.PathLike, *, expected_sha256: str | None = None) -> BundleContents:
    """Check and read a bundle: file digest (when given), manifest, every member's declared size, then bytes."""
    import hashlib

    path = Path(path)
    with ContainerReader(path, expected_sha256=expected_sha256) as zf:
        manifest = parse_manifest(zf.read_manifest_bytes(), str(path))
        entries = manifest.models
        names = [entry.file for entry in entries]
        if len(set(names)) != len(names):
            raise BundleError(f"{path}: the manifest lists one model file twice")
        # Sizes come from the central directory: nothing is inflated before all of them pass.
        zf.check_members({entry.file: entry.size_bytes for entry in entries})
        members = {}
        for entry in entries:
            data = zf.read(entry.file)
            if hashlib.sha256(data).hexdigest() != entry.sha256:
                raise BundleError(f"{path}: model file {entry.file!r} does not match its sha256 in the manifest")
            members[entry.file] = data
    return BundleContents(path, manifest, members)


def load_contents(contents: BundleContents, *, device: str = "auto") -> LoadedModel:
    """The model a read bundle describes, built by the backend its manifest names (nothing is read again).

    Raises :class:`BundleError` naming the file when the backend's framework is missing or the weights
    do not fit the model; ValueError for a device the backend does not see.
    """
    from fly64_train.core.seam import BackendUnavailable, get_backend

    try:
        backend = get_backend(contents.manifest.backend)
    except BackendUnavailable as exc:
        raise BundleError(f"{contents.path}: {exc}") from None
    try:
        return backend.load_model(contents.manifest, contents.members, device=device)
    except BundleError as exc:
        raise BundleError(f"{contents.path}: {exc}") from None


def load_bundle(path: str | os.PathLike, *, expected_sha256: str | None = None, device: str = "auto") -> LoadedModel:
    """Load a bundle of any backend as a :class:`~fly64_train.core.seam.LoadedModel` ready for inference.

    Parameters
    ----------
    path : path
        The ``wts.h5.zip`` file.
    expected_sha256 : str, optional
        The digest a manifest recorded for this file; a bundle whose bytes differ is refused first.
    device : str
        Where the backend runs the model: ``auto`` (default: a GPU when the backend's framework sees
        one, else the CPU), ``cpu``, ``cuda``, ``cuda:1`` ...

    Raises
    ------
    ValueError
        ``device`` is not one of the seam's names, or names a GPU the framework does not see.
    BundleError
        One line naming the file (and member): unreadable, truncated or tampered archive, a member
        bigger than declared or allowed, an unsupported format version, a backend whose framework
        is not installed, or weights that do not fit the model the manifest describes.
    """
    return load_contents(read_bundle(path, expected_sha256=expected_sha256), device=device)
