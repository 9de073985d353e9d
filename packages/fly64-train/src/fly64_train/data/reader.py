"""Lazy, bounded-memory access to DATA-001 NPZ files.

The study's NPZs are written uncompressed (ZIP_STORED), so each ``.npy``
member is a plain byte range of the file. :func:`npz_members` finds each
member's data offset from the zip's local headers; :class:`ArrayReader` then
reads single rows (patterns) with ``os.pread``. Reading rather than ``mmap``
is deliberate: pages of a mapping count towards the process's resident set
once touched, so a mapped 10,000-pattern file would grow peak RSS by its own
size over an epoch, while ``pread`` goes through the kernel page cache, which
the kernel can reclaim. A compressed member is unpacked once into a ``.npy``
cache beside the file and read the same way.

Every file is checked with :func:`fly64_data.contract.validate_dataset` before
use, in chunks of patterns, so validation is bounded in memory too.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fly64_data.contract import PER_POSITION_KEYS, REQUIRED_KEYS, ContractError, validate_dataset

_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
_LOCAL_MAGIC = 0x04034B50
VALIDATION_CHUNK = 256


@dataclass(frozen=True)
class MemberLayout:
    """Where one ``.npy`` member's raw array bytes live."""

    file: str
    key: str
    offset: int
    shape: tuple[int, ...]
    dtype: str
    fortran_order: bool


class ArrayReader:
    """Row access to one NPZ member without loading it.

    Picklable (the file descriptor is reopened lazily in each process), so
    DataLoader workers can share it.
    """

    def __init__(self, layout: MemberLayout) -> None:
        self.layout = layout
        self.dtype = np.dtype(layout.dtype)
        self.shape = layout.shape
        self._row_items = int(np.prod(self.shape[1:], dtype=np.int64)) if self.shape else 1
        self._row_bytes = self._row_items * self.dtype.itemsize
        self._fd: int | None = None
        self._pid: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fd"] = None
        state["_pid"] = None
        return state

    def __len__(self) -> int:
        return int(self.shape[0]) if self.shape else 1

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.layout.file, os.O_RDONLY)
            self._pid = os.getpid()
        return self._fd

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def __del__(self) -> None:  # best effort; descriptors are also closed at exit
        try:
            self.close()
        except Exception:
            pass

    def _pread(self, nbytes: int, offset: int) -> bytes:
        fd = self._descriptor()
        parts, got = [], 0
        while got < nbytes:
            block = os.pread(fd, nbytes - got, offset + got)
            if not block:
                raise ContractError(f"{self.layout.file}: member {self.layout.key!r} is truncated")
            parts.append(block)
            got += len(block)
        return b"".join(parts)

    def read_all(self) -> np.ndarray:
        """The whole member (meant for small arrays: coordinates, probe, object)."""
        count = int(np.prod(self.shape, dtype=np.int64))
        raw = self._pread(count * self.dtype.itemsize, self.layout.offset)
        order = "F" if self.layout.fortran_order else "C"
        return np.frombuffer(raw, dtype=self.dtype, count=count).reshape(self.shape, order=order).copy()

    def read_rows(self, rows: np.ndarray | slice) -> np.ndarray:
        """Rows ``rows`` of the first axis; contiguous runs are read in one call."""
        if self.layout.fortran_order:
            raise ContractError(f"{self.layout.file}: member {self.layout.key!r} is stored in Fortran order; "
                                "rows cannot be read lazily")
        if isinstance(rows, slice):
            rows = np.arange(len(self))[rows]
        rows = np.asarray(rows, dtype=np.int64).ravel()
        out = np.empty((rows.size, *self.shape[1:]), dtype=self.dtype)
        flat = out.reshape(rows.size, -1)
        start = 0
        while start < rows.size:
            stop = start + 1
            while stop < rows.size and rows[stop] == rows[stop - 1] + 1:
                stop += 1
            first = int(rows[start])
            raw = self._pread((stop - start) * self._row_bytes, self.layout.offset + first * self._row_bytes)
            flat[start:stop] = np.frombuffer(raw, dtype=self.dtype).reshape(stop - start, -1)
            start = stop
        return out


def npz_members(path: str | os.PathLike) -> dict[str, ArrayReader]:
    """Readers for every ``.npy`` member of an NPZ (object arrays are refused: no pickle)."""
    path = Path(path)
    if not path.is_file():
        raise ContractError(f"{path}: file not found")
    try:
        with zipfile.ZipFile(path) as zf, path.open("rb") as fh:
            readers = {}
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                key = info.filename[:-4]
                if info.compress_type == zipfile.ZIP_STORED:
                    layout = _stored_layout(path, fh, info, key)
                else:
                    layout = _cached_layout(path, zf, info, key)
                readers[key] = ArrayReader(layout)
            return readers
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as exc:
        raise ContractError(f"{path}: not a readable NPZ file ({exc})") from None


def _read_npy_header(fh: Any, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise ValueError(f"{where}: unsupported .npy version {version}")
    if dtype.hasobject:
        raise ValueError(f"{where}: object arrays need pickle, which is not allowed")
    return tuple(int(s) for s in shape), bool(fortran), dtype


def _stored_layout(path: Path, fh: Any, info: zipfile.ZipInfo, key: str) -> MemberLayout:
    fh.seek(info.header_offset)
    fields = _LOCAL_HEADER.unpack(fh.read(_LOCAL_HEADER.size))
    if fields[0] != _LOCAL_MAGIC:
        raise ValueError(f"bad local header for member {info.filename!r}")
    name_len, extra_len = fields[9], fields[10]
    fh.seek(info.header_offset + _LOCAL_HEADER.size + name_len + extra_len)
    shape, fortran, dtype = _read_npy_header(fh, f"member {info.filename!r}")
    return MemberLayout(str(path), key, fh.tell(), shape, dtype.str, fortran)


def _cached_layout(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str) -> MemberLayout:
    # The cache is keyed by size and mtime so a rewritten NPZ never serves stale rows.
    stat = path.stat()
    cache_dir = path.with_name(f".{path.name}.{stat.st_size}-{stat.st_mtime_ns}.cache")
    target = cache_dir / f"{key}.npy"
    if not target.exists():
        cache_dir.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=cache_dir)
        try:
            with os.fdopen(fd, "wb") as out, zf.open(info) as src:
                shutil.copyfileobj(src, out, 1 << 20)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    with target.open("rb") as fh:
        shape, fortran, dtype = _read_npy_header(fh, str(target))
        return MemberLayout(str(target), key, fh.tell(), shape, dtype.str, fortran)


@dataclass
class DatasetInfo:
    """A validated dataset: its metadata, small arrays and a lazy pattern reader."""

    path: Path
    meta: dict[str, Any]
    n: int
    patch_size: int
    intensity_scale: float
    probe: np.ndarray
    ycoords: np.ndarray
    xcoords: np.ndarray
    diffraction: ArrayReader = field(repr=False)
    readers: dict[str, ArrayReader] = field(repr=False, default_factory=dict)


def open_dataset(path: str | os.PathLike, gridsize: int = 1, neighbor_count: int | None = None,
                 chunk: int = VALIDATION_CHUNK) -> DatasetInfo:
    """Validate an NPZ against DATA-001 chunk by chunk and return lazy access to it.

    Raises
    ------
    ContractError
        One line naming the file and the problem; nothing has been trained yet.
    """
    path = Path(path)
    readers = npz_members(path)
    try:
        meta = _validate_in_chunks(readers, gridsize, neighbor_count, chunk)
        scale = meta.get("intensity_scale")
        if not isinstance(scale, (int, float)) or not np.isfinite(scale) or scale <= 0:
            raise ContractError(f"key '_metadata': intensity_scale must be a positive number, got {scale!r}")
    except ContractError as exc:
        raise ContractError(f"{path}: {exc}") from None
    diff = readers["diffraction"]
    return DatasetInfo(
        path=path, meta=meta, n=int(diff.shape[0]), patch_size=int(diff.shape[1]),
        intensity_scale=float(scale), probe=readers["probeGuess"].read_all(),
        ycoords=readers["ycoords"].read_all(), xcoords=readers["xcoords"].read_all(),
        diffraction=diff, readers=readers,
    )


def _validate_in_chunks(readers: dict[str, ArrayReader], gridsize: int, neighbor_count: int | None,
                        chunk: int) -> dict[str, Any]:
    whole = {key: r.read_all() for key, r in readers.items() if key not in PER_POSITION_KEYS}
    per_pos = {key: r for key, r in readers.items() if key in PER_POSITION_KEYS}
    if any(key not in readers for key in REQUIRED_KEYS):
        # Let the contract's own validator word the missing-key error.
        validate_dataset({**whole, **{k: r.read_rows(slice(0, 1)) for k, r in per_pos.items()}},
                         gridsize, neighbor_count)
    n = len(per_pos["diffraction"]) if "diffraction" in per_pos and per_pos["diffraction"].shape else 0
    for key, reader in per_pos.items():
        if not reader.shape or reader.shape[0] != n:
            raise ContractError(f"key {key!r}: expected first dimension n={n}, got shape {reader.shape}")
    meta: dict[str, Any] = {}
    for start in range(0, max(n, 1), chunk):
        rows = slice(start, min(start + chunk, n))
        mapping = dict(whole)
        mapping.update({key: reader.read_rows(rows) for key, reader in per_pos.items()})
        meta = validate_dataset(mapping, gridsize, neighbor_count)
    return meta
