"""Finding the contract's arrays inside an NPZ: member layout, header checks, the decompression cache.

The study's NPZs are written uncompressed (ZIP_STORED), so each ``.npy`` member
is a plain byte range of the file: :func:`npz_members` finds each member's data
offset from the zip's local headers. A compressed member is unpacked once into a
``.npy`` cache beside the file and read the same way.

Only members named by the contract (:data:`fly64_data.contract.REQUIRED_KEYS`)
are looked at; any other member is ignored. Cache files are named by the
contract key, never by the member name, so no name inside a file ever becomes a
path. Every ``.npy`` header is checked against the bytes the member really
holds before anything is allocated or decompressed, so a header declaring
terabytes is refused in one line.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from fly64_data.contract import REQUIRED_KEYS, ContractError
from fly64_data.npz_reader import NpzError, member_header
from fly64_train.data.array_reader import ArrayReader, MemberLayout

_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
_LOCAL_MAGIC = 0x04034B50
#: Member name -> contract key, for the members we read.
_MEMBER_KEYS = {f"{key}.npy": key for key in REQUIRED_KEYS}


def npz_members(path: str | os.PathLike) -> dict[str, ArrayReader]:
    """Readers for the contract's ``.npy`` members of an NPZ (object arrays are refused: no pickle).

    Raises
    ------
    ContractError
        One line naming the file (and the member) for an unreadable zip, a bad
        ``.npy`` header, or a header declaring more data than the member holds.
    """
    path = Path(path)
    if not path.is_file():
        raise ContractError(f"{path}: file not found")
    try:
        with zipfile.ZipFile(path) as zf, path.open("rb") as fh:
            readers = {}
            for info in zf.infolist():
                key = _MEMBER_KEYS.get(info.filename)
                if key is None:
                    continue
                if info.compress_type == zipfile.ZIP_STORED:
                    layout = _stored_layout(path, zf, fh, info, key)
                else:
                    layout = _cached_layout(path, zf, info, key)
                readers[key] = ArrayReader(layout)
            return readers
    except NpzError as exc:
        raise ContractError(str(exc)) from None
    except ContractError as exc:
        raise ContractError(f"{path}: {exc}") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as exc:
        raise ContractError(f"{path}: not a readable NPZ file ({' '.join(str(exc).split())})") from None


def _stored_layout(path: Path, zf: zipfile.ZipFile, fh: Any, info: zipfile.ZipInfo, key: str) -> MemberLayout:
    fh.seek(info.header_offset)
    fields = _LOCAL_HEADER.unpack(fh.read(_LOCAL_HEADER.size))
    if fields[0] != _LOCAL_MAGIC:
        raise ContractError(f"member {key!r}: bad local zip header")
    name_len, extra_len = fields[9], fields[10]
    header = member_header(zf, path, info)
    offset = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len + header.data_offset
    return MemberLayout(str(path), key, offset, header.shape, header.dtype.str, header.fortran_order)


def _cached_layout(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str) -> MemberLayout:
    # The header is read from the compressed stream first: a member declaring more than its
    # (declared) uncompressed size is refused before anything is unpacked.
    header = member_header(zf, path, info)
    # The cache is keyed by size and mtime so a rewritten NPZ never serves stale rows.
    stat = path.stat()
    cache_dir = path.with_name(f".{path.name}.{stat.st_size}-{stat.st_mtime_ns}.cache")
    target = cache_dir / f"{key}.npy"  # the contract key, never the member's own name
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
    # The cache holds the member's bytes unchanged: the same header, the same data offset.
    if target.stat().st_size != info.file_size:
        raise ContractError(f"member {key!r}: cached copy {target} is not the member's size")
    return MemberLayout(str(target), key, header.data_offset, header.shape, header.dtype.str, header.fortran_order)
