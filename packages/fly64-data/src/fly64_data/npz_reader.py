"""Read NPZ files from untrusted sources: headers are checked before anything is allocated.

``np.load`` trusts an archive: a ``.npy`` header may declare terabytes that are
allocated before the data is found missing, a member's name may be any string,
and damage surfaces as half a dozen exception types. This reader opens the zip
itself and, for every member, before reading any array data:

* refuses a member name that is not a plain ``<key>.npy`` (names are never paths);
* reads the ``.npy`` header with :mod:`numpy.lib.format` and refuses object dtypes
  (loading them would unpickle);
* checks the declared size ``prod(shape) * itemsize`` against the member's
  recorded uncompressed size, its compressed size (deflate cannot expand more
  than about 1032:1) and a caller's byte limit.

Only then is the array read, and any damage found while reading (bad CRC-32,
corrupt deflate stream, truncation) becomes one :class:`NpzError` line naming the
file and the key::

    headers = npz_headers("data.npz")             # {key: NpyHeader}, nothing loaded
    arrays = read_npz("data.npz", keys=["Y"], max_bytes=2**30)
"""

from __future__ import annotations

import math
import os
import re
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: A member name must be ``<key>.npy`` with a key made of these characters only.
_MEMBER_NAME = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_\-]*)\.npy$")
#: Largest expansion deflate can achieve (RFC 1951: 258 bytes per 2-bit code, ~1032:1), with slack.
_MAX_DEFLATE_RATIO = 1100
_SLACK_BYTES = 4096
#: Largest .npy header numpy itself accepts by default.
_MAX_HEADER_BYTES = 10_000
_CHUNK_BYTES = 16 << 20
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, NotImplementedError)


class NpzError(ValueError):
    """An NPZ file is unreadable, damaged or declares more than it holds; the message names the file."""


@dataclass(frozen=True)
class NpyHeader:
    """What one member's ``.npy`` header declares, checked against the archive."""

    key: str
    """Array name: the member name without ``.npy``."""
    shape: tuple[int, ...]
    """Declared shape."""
    dtype: np.dtype
    """Declared dtype (never an object dtype)."""
    fortran_order: bool
    """Whether the data is stored column-major."""
    nbytes: int
    """Declared data size, ``prod(shape) * itemsize``."""
    data_offset: int
    """Bytes of magic and header before the array data inside the member."""

    def check(self) -> None:
        """Raise ValueError if the header is self-inconsistent (negative sizes, object dtype)."""
        if self.dtype.hasobject:
            raise ValueError(f"key {self.key!r}: dtype {self.dtype} holds Python objects (refused: it would unpickle)")
        if any(dim < 0 for dim in self.shape) or self.nbytes < 0:
            raise ValueError(f"key {self.key!r}: invalid shape {self.shape}")


def npz_headers(path: str | os.PathLike) -> dict[str, NpyHeader]:
    """Every member's checked header, keyed by array name; no array data is read.

    Raises
    ------
    NpzError
        If the file is not a readable zip, a member name is not ``<key>.npy``, a key
        repeats, a header is malformed or has an object dtype, or a member declares
        more data than it holds.
    """
    path = Path(path)
    with _open_zip(path) as zf:
        return _headers(zf, path)


def read_npz(path: str | os.PathLike, keys: Iterable[str] | None = None,
             max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Load arrays of an NPZ after checking every header.

    Parameters
    ----------
    path : path
        The NPZ file.
    keys : iterable of str, optional
        Arrays to load (all when None); a key the file lacks is an error.
    max_bytes : int, optional
        Refuse (from the headers, before allocating) if the arrays to load would
        together take more bytes. Default: the machine's physical memory.

    Raises
    ------
    NpzError
        One line naming the file, and the key and declared shape where that is the problem.
    """
    path = Path(path)
    limit = physical_memory_bytes() if max_bytes is None else int(max_bytes)
    with _open_zip(path) as zf:
        headers = _headers(zf, path)
        wanted = list(headers) if keys is None else list(dict.fromkeys(keys))
        missing = [key for key in wanted if key not in headers]
        if missing:
            raise NpzError(f"{path}: missing key {missing[0]!r} (has: {', '.join(headers) or 'none'})")
        total = sum(headers[key].nbytes for key in wanted)
        if total > limit:
            biggest = max(wanted, key=lambda key: headers[key].nbytes)
            raise NpzError(f"{path}: key {biggest!r}: declared shape {headers[biggest].shape} "
                           f"({headers[biggest].dtype}) needs {_size(total)} in all, more than the "
                           f"{_size(limit)} allowed")
        return {key: _read_member(zf, path, headers[key]) for key in wanted}


def physical_memory_bytes() -> int:
    """Physical memory of this machine: no array larger than this can be loaded anyway."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 40  # platforms without sysconf: 1 TiB


def _open_zip(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise NpzError(f"{path}: file not found")
    try:
        return zipfile.ZipFile(path)
    except _READ_ERRORS as exc:
        raise NpzError(f"{path}: not a readable NPZ file ({_one_line(exc)})") from None


def _headers(zf: zipfile.ZipFile, path: Path) -> dict[str, NpyHeader]:
    headers: dict[str, NpyHeader] = {}
    for info in zf.infolist():
        header = member_header(zf, path, info)
        if header.key in headers:
            raise NpzError(f"{path}: member {info.filename!r} appears twice")
        headers[header.key] = header
    return headers


def member_header(zf: zipfile.ZipFile, path: str | os.PathLike, info: zipfile.ZipInfo) -> NpyHeader:
    """The checked header of one member of an open NPZ (for readers that pick their own members).

    Raises
    ------
    NpzError
        If the name is not a plain ``<key>.npy``, the header is malformed or has an
        object dtype, or the member declares other than the data it holds.
    """
    path = Path(path)
    match = _MEMBER_NAME.match(info.filename)
    if match is None:
        raise NpzError(f"{path}: member {info.filename!r} is not a plain '<key>.npy' name (refused)")
    key = match.group(1)
    archive_size = path.stat().st_size
    if info.compress_size > archive_size:
        raise NpzError(f"{path}: key {key!r}: member claims {info.compress_size} compressed bytes, "
                       f"more than the file's {archive_size}")
    header = _read_header(zf, path, info, key)
    _check_size(path, info, header)
    return header


def _read_header(zf: zipfile.ZipFile, path: Path, info: zipfile.ZipInfo, key: str) -> NpyHeader:
    try:
        with zf.open(info) as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh, max_header_size=_MAX_HEADER_BYTES)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh, max_header_size=_MAX_HEADER_BYTES)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
            offset = fh.tell()
    except _READ_ERRORS as exc:
        raise NpzError(f"{path}: key {key!r}: unreadable .npy header ({_one_line(exc)})") from None
    nbytes = math.prod(shape) * dtype.itemsize
    header = NpyHeader(key, tuple(shape), dtype, bool(fortran), nbytes, offset)
    try:
        header.check()
    except ValueError as exc:
        raise NpzError(f"{path}: {exc}") from None
    return header


def _check_size(path: Path, info: zipfile.ZipInfo, header: NpyHeader) -> None:
    """The declared data must be exactly what the member holds, and the member must be plausible."""
    holds = info.file_size - header.data_offset
    if info.compress_type == zipfile.ZIP_STORED:
        ceiling = info.compress_size
    else:
        ceiling = info.compress_size * _MAX_DEFLATE_RATIO + _SLACK_BYTES
    if header.nbytes != holds or info.file_size > ceiling:
        raise NpzError(f"{path}: key {header.key!r}: header declares shape {header.shape} ({header.dtype}, "
                       f"{_size(header.nbytes)}) but the member holds {_size(max(holds, 0))}")


def _read_member(zf: zipfile.ZipFile, path: Path, header: NpyHeader) -> np.ndarray:
    # Read straight into the array's own buffer, in chunks, so memory peaks at the array's size.
    out = np.empty(header.nbytes, np.uint8)
    view = memoryview(out)
    try:
        with zf.open(f"{header.key}.npy") as fh:
            fh.seek(header.data_offset)
            done = 0
            while done < header.nbytes:
                got = fh.readinto(view[done:done + _CHUNK_BYTES])
                if not got:
                    raise EOFError(f"member ends after {done} of {header.nbytes} data bytes")
                done += got
            fh.read()  # to the end: zipfile checks the CRC-32 once the whole member has been read
        order = "F" if header.fortran_order else "C"
        return out.view(header.dtype).reshape(header.shape, order=order)
    except _READ_ERRORS as exc:
        raise NpzError(f"{path}: key {header.key!r}: damaged data ({_one_line(exc)})") from None


def _size(nbytes: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
