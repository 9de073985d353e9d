"""The sha256 of an input file, computed once per process while the file is unchanged.

A study run checks each training file against its producer's manifest, the job folder records its digest
for resuming, and the bundle records it in its provenance: three uses of one digest of a file that can be
gigabytes. The digest is kept per file identity (device, inode, size, modification time in ns), so a file
rewritten in place is hashed again.
"""

from __future__ import annotations

import functools
import os

from fly64_manifest import sha256_file


def file_sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of ``path``'s bytes (computed once while its identity and mtime are unchanged)."""
    st = os.stat(path)
    return _digest(os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _digest(path: str, dev: int, ino: int, size: int, mtime_ns: int) -> str:
    return sha256_file(path)[0]
