"""The bundle container: a deterministic zip of ``manifest.json`` plus named weight files.

Framework-neutral: a member is named bytes and the manifest entry that describes
it (sha256, size). Torch bundles hold safetensors files, TensorFlow bundles Keras
``.weights.h5`` files; this module never looks inside them.

Reading trusts nothing in the archive. Before a single byte is inflated, every
member's *declared* size (from the central directory) is checked against what
its manifest entry records and against a hard cap; members are then read with a
bounded streaming read, so a header that understates its member cannot inflate
past the cap either; a damaged deflate stream, a bad CRC or a truncated archive
is a :class:`BundleError` naming the file and the member. Member names are only
ever used as keys, never as paths.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"
MAX_MEMBER_BYTES = 256 << 20
"""Hard cap on one weight file (the default study model's weights are a few MB)."""
MAX_MANIFEST_BYTES = 4 << 20
"""Hard cap on ``manifest.json`` (config and provenance are a few KB)."""
_READ_CHUNK = 1 << 20
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # no wall clock in the bytes: the same model gives the same file
_COMPRESS_LEVEL = 6
_MEMBER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")
_NAME = re.compile(r"^[A-Za-z0-9_]+$")


class BundleError(ValueError):
    """A bundle is unreadable, tampered with, of another format version, or does not fit its model."""


@dataclass(frozen=True)
class WeightFile:
    """One model's weights as stored in a bundle."""

    name: str
    """Model name inside the bundle (``diffraction_to_obj``, ``forward_model``)."""
    file: str
    """Member name in the zip, e.g. ``models/diffraction_to_obj.safetensors`` (never used as a path)."""
    data: bytes = field(repr=False)
    """The file's bytes, in the backend's weight format."""
    details: dict[str, Any] = field(default_factory=dict)
    """Extra manifest fields of the entry (``n_tensors``, ``n_parameters``)."""

    def check(self) -> None:
        """Refuse names that the manifest schema would refuse or that look like paths out of the archive."""
        if not _NAME.match(self.name):
            raise ValueError(f"weight file name {self.name!r} must match {_NAME.pattern}")
        if not _MEMBER_NAME.match(self.file) or ".." in self.file or self.file == MANIFEST_NAME:
            raise ValueError(f"weight file member {self.file!r} is not a plain relative member name")
        if len(self.data) > MAX_MEMBER_BYTES:
            raise ValueError(f"weight file {self.file!r} is {len(self.data)} bytes, over the {MAX_MEMBER_BYTES} cap")

    def entry(self) -> dict[str, Any]:
        """The manifest's ``models`` entry: name, file, sha256 and size of the bytes, then the details."""
        return {"name": self.name, "file": self.file, "sha256": hashlib.sha256(self.data).hexdigest(),
                "size_bytes": len(self.data), **self.details}


@dataclass(frozen=True)
class BundleFile:
    """A bundle as written: where it is and what its final bytes hash to."""

    path: Path
    """The bundle file."""
    sha256: str
    """sha256 of the file's bytes (64 lowercase hex)."""
    size_bytes: int
    """Size of the file in bytes."""


def write_container(path: str | os.PathLike, manifest_json: bytes, files: list[WeightFile]) -> BundleFile:
    """Write ``manifest.json`` then ``files`` as a deterministic zip, atomically (temp file, fsync, rename)."""
    path = Path(path)
    for wf in files:
        wf.check()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w") as zf:
                for name, data in [(MANIFEST_NAME, manifest_json), *((wf.file, wf.data) for wf in files)]:
                    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    zf.writestr(info, data, compresslevel=_COMPRESS_LEVEL)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # Digest the bytes now on disk, not the in-memory members: that is what a reader verifies.
    return BundleFile(path, file_sha256(path), path.stat().st_size)


def file_sha256(path: Path) -> str:
    """sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_READ_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class ContainerReader:
    """Checked, bounded access to the members of a bundle zip (use as a context manager)."""

    def __init__(self, path: str | os.PathLike, *, expected_sha256: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise BundleError(f"{self.path}: bundle not found")
        if expected_sha256 is not None:
            actual = file_sha256(self.path)
            if actual != expected_sha256:
                raise BundleError(f"{self.path}: sha256 {actual} does not match the expected {expected_sha256}")
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
            raise BundleError(f"{self.path}: not a readable zip archive, truncated or corrupt ({exc})") from None
        self._infos: dict[str, zipfile.ZipInfo] = {}
        for info in self._zip.infolist():
            if info.filename in self._infos:
                self.close()
                raise BundleError(f"{self.path}: member {info.filename!r} appears twice")
            self._infos[info.filename] = info

    def __enter__(self) -> ContainerReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    @property
    def names(self) -> list[str]:
        """Member names, as keys only."""
        return list(self._infos)

    def check_members(self, expected: dict[str, int | None]) -> None:
        """Refuse, from the central directory alone, any member not in ``expected`` or of the wrong declared size.

        ``expected`` maps each listed weight file to the size its manifest entry
        records (``None`` when a format 1.x manifest records none: the cap alone applies).
        """
        for name in self._infos:
            if name != MANIFEST_NAME and name not in expected:
                raise BundleError(f"{self.path}: unexpected member {name!r} (not listed in {MANIFEST_NAME})")
        for name, size in expected.items():
            if name not in self._infos:
                raise BundleError(f"{self.path}: model file {name!r} listed in the manifest is missing")
            declared = self._infos[name].file_size
            if size is not None and declared != size:
                raise BundleError(f"{self.path}: member {name!r} declares {declared} bytes but the manifest "
                                  f"records {size}; refused before decompressing")
            if declared > MAX_MEMBER_BYTES:
                raise BundleError(f"{self.path}: member {name!r} declares {declared} bytes, over the "
                                  f"{MAX_MEMBER_BYTES}-byte cap; refused before decompressing")

    def read(self, name: str, *, limit: int = MAX_MEMBER_BYTES) -> bytes:
        """A member's bytes, read in bounded chunks; never more than ``limit`` (nor its declared size)."""
        info = self._infos.get(name)
        if info is None:
            raise BundleError(f"{self.path}: no member {name!r} in the bundle")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BundleError(f"{self.path}: member {name!r} uses unsupported compression {info.compress_type}")
        limit = min(limit, info.file_size)
        parts: list[bytes] = []
        total = 0
        try:
            with self._zip.open(info) as fh:
                while True:
                    block = fh.read(min(_READ_CHUNK, limit + 1 - total))
                    if not block:
                        break
                    total += len(block)
                    if total > limit:
                        raise BundleError(f"{self.path}: member {name!r} inflates past {limit} bytes")
                    parts.append(block)
        except BundleError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise BundleError(f"{self.path}: member {name!r} is corrupt or truncated ({detail})") from None
        return b"".join(parts)

    def read_manifest_bytes(self) -> bytes:
        """The raw ``manifest.json`` (capped)."""
        info = self._infos.get(MANIFEST_NAME)
        if info is None:
            raise BundleError(f"{self.path}: no {MANIFEST_NAME} inside the bundle")
        if info.file_size > MAX_MANIFEST_BYTES:
            raise BundleError(f"{self.path}: {MANIFEST_NAME} declares {info.file_size} bytes, over the "
                              f"{MAX_MANIFEST_BYTES}-byte cap")
        return self.read(MANIFEST_NAME, limit=MAX_MANIFEST_BYTES)
