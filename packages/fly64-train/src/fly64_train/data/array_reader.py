"""Row access to one ``.npy`` member of an NPZ without loading it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from fly64_data.contract import ContractError


@dataclass(frozen=True)
class MemberLayout:
    """Where one ``.npy`` member's raw array bytes live."""

    file: str
    """The file holding the bytes: the NPZ itself (stored member) or its cache file (compressed member)."""
    key: str
    """The contract key the member holds (``diffraction``, ``probeGuess``, ...)."""
    offset: int
    """Byte offset of the array data in ``file``."""
    shape: tuple[int, ...]
    """Shape declared by the ``.npy`` header (already checked against the bytes present)."""
    dtype: str
    """numpy dtype string of the array."""
    fortran_order: bool
    """Whether the header declares Fortran (column-major) order."""


class ArrayReader:
    """Row access to one NPZ member through ``os.pread``.

    Reading rather than ``mmap`` is deliberate: pages of a mapping count towards
    the process's resident set once touched, so a mapped 10,000-pattern file
    would grow peak RSS by its own size over an epoch, while ``pread`` goes
    through the kernel page cache, which the kernel can reclaim.

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

    @property
    def nbytes(self) -> int:
        """Bytes of the whole array once read into memory."""
        return len(self) * self._row_bytes

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
        if rows.size == 0:
            return out
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
