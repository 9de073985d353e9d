"""DATA-001: the NPZ data contract every phase writes and reads.

The validator is pure: it takes a mapping of arrays (or a path to an NPZ) and
either returns the parsed ``_metadata`` dict or raises :class:`ContractError`
(a ``ValueError``) naming the offending key and the expected vs actual
shape/dtype.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fly64_data.npz_reader import NpzError, read_npz
from fly64_manifest import ManifestError, atomic_write, parse_json
from fly64_manifest import sha256_file as file_digest

SCHEMA_VERSION = "1.0"

#: Per-position keys: first axis is the position index n.
PER_POSITION_KEYS = ("diffraction", "Y", "xcoords", "ycoords", "scan_index")
REQUIRED_KEYS = (*PER_POSITION_KEYS, "objectGuess", "probeGuess", "_metadata")
METADATA_FIELDS = (
    "schema_version", "created", "producer", "dose", "measured_mean_counts", "intensity_scale",
    "N", "seeds", "sources", "data_transformations",
)


class ContractError(ValueError):
    """A dataset violates the NPZ data contract."""


def validate_dataset(
    data: Mapping[str, Any] | str | os.PathLike,
    gridsize: int = 1,
    neighbor_count: int | None = None,
) -> dict[str, Any]:
    """Check a dataset against DATA-001 and return its parsed ``_metadata``.

    Parameters
    ----------
    data : mapping or path
        Arrays keyed as in the contract, or the path of an NPZ file.
    gridsize : int
        Grouping the data will be used with; ``gridsize > 1`` needs
        ``neighbor_count >= gridsize**2``.
    neighbor_count : int, optional
        K used for grouping (checked only when ``gridsize > 1``).

    Raises
    ------
    ContractError
        With a one-line message naming the file (if any), the key and the problem.
    """
    if isinstance(data, (str, os.PathLike)):
        return load_dataset(data, gridsize, neighbor_count)[1]
    return _validate_mapping(data, gridsize, neighbor_count)


def load_dataset(path: str | os.PathLike, gridsize: int = 1,
                 neighbor_count: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read an NPZ through the header-checking reader, validate it, return ``(arrays, metadata)``.

    Every array of the file is loaded once (``_metadata`` included); a file that is
    damaged, declares more than it holds or breaks the contract raises
    :class:`ContractError` with one line naming the file.
    """
    path = Path(path)
    try:
        arrays = read_npz(path)
    except NpzError as exc:
        raise ContractError(str(exc)) from None
    try:
        return arrays, _validate_mapping(arrays, gridsize, neighbor_count)
    except ContractError as exc:
        raise ContractError(f"{path}: {exc}") from None


def _validate_mapping(data: Mapping[str, Any], gridsize: int, neighbor_count: int | None) -> dict[str, Any]:
    keys = set(data.keys())
    for key in REQUIRED_KEYS:
        if key not in keys:
            raise ContractError(f"missing key {key!r} (required: {', '.join(REQUIRED_KEYS)})")
    try:
        arrays = {key: np.asarray(data[key]) for key in REQUIRED_KEYS}
    except (ValueError, TypeError) as exc:
        raise ContractError(f"cannot read arrays ({exc})") from None

    diff = arrays["diffraction"]
    if diff.ndim != 3 or diff.shape[1] != diff.shape[2]:
        raise ContractError(f"key 'diffraction': expected shape (n, N, N), got {diff.shape}")
    n, big_n = diff.shape[0], diff.shape[1]
    if n == 0:
        raise ContractError("key 'diffraction': no diffraction patterns (n = 0); a dataset needs at least one")
    _check(arrays, "diffraction", (n, big_n, big_n), np.float32)
    _check(arrays, "Y", (n, big_n, big_n), np.complex64)
    _check(arrays, "probeGuess", (big_n, big_n), np.complex64)
    obj = arrays["objectGuess"]
    if obj.ndim != 2:
        raise ContractError(f"key 'objectGuess': expected shape (H, W), got {obj.shape}")
    _check(arrays, "objectGuess", obj.shape, np.complex64)
    for key in ("xcoords", "ycoords"):
        _check(arrays, key, (n,), np.float64)
    _check(arrays, "scan_index", (n,), np.int64)

    for key in ("diffraction", "Y", "objectGuess", "probeGuess", "xcoords", "ycoords"):
        if not np.all(np.isfinite(arrays[key])):
            raise ContractError(f"key {key!r}: contains non-finite values (NaN or inf)")
    if float(diff.min()) < 0:
        raise ContractError(f"key 'diffraction': negative amplitudes (min {float(diff.min()):.3g})")

    if gridsize > 1:
        need = gridsize**2
        if neighbor_count is None or neighbor_count < need:
            raise ContractError(
                f"gridsize {gridsize} needs neighbor_count >= {need} (gridsize^2), got {neighbor_count}"
            )
    return _parse_metadata(arrays["_metadata"])


def _check(arrays: Mapping[str, np.ndarray], key: str, shape: tuple[int, ...], dtype: Any) -> None:
    arr = arrays[key]
    if arr.dtype != np.dtype(dtype):
        raise ContractError(f"key {key!r}: expected dtype {np.dtype(dtype)}, got {arr.dtype}")
    if arr.shape != tuple(shape):
        raise ContractError(f"key {key!r}: expected shape {tuple(shape)}, got {arr.shape}")


def _parse_metadata(raw: np.ndarray) -> dict[str, Any]:
    if raw.shape != () or raw.dtype.kind != "U":
        raise ContractError(f"key '_metadata': expected a 0-d unicode JSON string, got {raw.dtype} {raw.shape}")
    try:
        meta = parse_json(str(raw), source="key '_metadata'")
    except ManifestError as exc:
        raise ContractError(str(exc)) from None
    if not isinstance(meta, dict):
        raise ContractError("key '_metadata': expected a JSON object")
    missing = [f for f in METADATA_FIELDS if f not in meta]
    if missing:
        raise ContractError(f"key '_metadata': missing field(s) {', '.join(missing)}")
    if not isinstance(meta["data_transformations"], list):
        raise ContractError("key '_metadata': data_transformations must be a list")
    return meta


def metadata_array(meta: Mapping[str, Any]) -> np.ndarray:
    """Encode metadata as the 0-d unicode array the contract stores."""
    return np.array(json.dumps(meta, sort_keys=True, allow_nan=False))


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Parsed ``_metadata`` of an NPZ, without loading the large arrays."""
    try:
        return _parse_metadata(read_npz(path, keys=["_metadata"])["_metadata"])
    except NpzError as exc:
        raise ContractError(str(exc)) from None
    except ContractError as exc:
        raise ContractError(f"{path}: {exc}") from None


def utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def creation_time() -> str:
    """UTC creation time; honours SOURCE_DATE_EPOCH so reruns can be byte-identical."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        return utc_now()
    try:
        return datetime.fromtimestamp(int(epoch), UTC).isoformat().replace("+00:00", "Z")
    except ValueError:
        raise ValueError(f"SOURCE_DATE_EPOCH: not an integer number of seconds ({epoch!r})") from None


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (read in chunks)."""
    return file_digest(path)[0]


def write_dataset(path: str | os.PathLike, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> Path:
    """Validate, then write an NPZ atomically (temp file in the same folder + rename).

    The archive is written uncompressed so later phases can memory-map members.
    """
    path = Path(path)
    payload = dict(arrays)
    payload["_metadata"] = metadata_array(meta)
    try:
        validate_dataset(payload)
    except ContractError as exc:
        raise ContractError(f"{path}: refusing to write: {exc}") from None
    with atomic_write(path, "wb") as fh:
        _write_npz_deterministic(fh, payload)
    return path


def _write_npz_deterministic(fh: Any, payload: Mapping[str, Any]) -> None:
    """Like ``np.savez`` but with fixed zip timestamps, so equal data gives equal bytes."""
    with zipfile.ZipFile(fh, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key in sorted(payload):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            with zf.open(info, mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(payload[key]), allow_pickle=False)

