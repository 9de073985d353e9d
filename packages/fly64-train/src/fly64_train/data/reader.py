"""A validated training/test dataset: DATA-001 checked chunk by chunk, patterns left on disk.

:func:`open_dataset` checks a file with :func:`fly64_data.contract.validate_dataset`
in chunks of patterns (so validation is bounded in memory too) and returns the
small arrays plus a lazy reader of the patterns. Where the arrays live inside the
NPZ is :mod:`fly64_train.data.npz_layout`'s business; reading rows is
:class:`fly64_train.data.array_reader.ArrayReader`'s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fly64_data.contract import PER_POSITION_KEYS, REQUIRED_KEYS, ContractError, validate_dataset
from fly64_train.data.array_reader import ArrayReader
from fly64_train.data.npz_layout import npz_members

__all__ = ["VALIDATION_CHUNK", "ArrayReader", "DatasetInfo", "dataset_of", "npz_members", "open_dataset"]

#: Patterns validated at a time: bounds the memory validation needs at any N.
VALIDATION_CHUNK = 256


@dataclass
class DatasetInfo:
    """A validated dataset: its metadata, small arrays and a lazy pattern reader."""

    path: Path
    """The NPZ file."""
    meta: dict[str, Any]
    """Its parsed ``_metadata``."""
    n: int
    """Number of diffraction patterns (scan positions), at least 1."""
    patch_size: int
    """N, the side of a pattern."""
    intensity_scale: float
    """The recorded scale ``s`` (counts = (s * diffraction)^2), positive and finite."""
    probe: np.ndarray
    """``probeGuess`` (N, N) complex64."""
    ycoords: np.ndarray
    """Scan rows of the positions, (n,) float64."""
    xcoords: np.ndarray
    """Scan columns of the positions, (n,) float64."""
    diffraction: ArrayReader = field(repr=False)
    """Lazy row reader of the (n, N, N) float32 diffraction amplitudes."""
    readers: dict[str, ArrayReader] = field(repr=False, default_factory=dict)
    """Readers of every contract member."""


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


def dataset_of(source: str | os.PathLike | DatasetInfo, gridsize: int = 1,
               neighbor_count: int | None = None) -> DatasetInfo:
    """``source`` itself when it is an opened dataset, else :func:`open_dataset` of the path.

    An evaluation opens (and validates, reading every pattern) its test split once and hands the
    :class:`DatasetInfo` to each step; a caller holding only a path still gets the checked file.
    """
    if isinstance(source, DatasetInfo):
        return source
    return open_dataset(source, gridsize, neighbor_count)


def _validate_in_chunks(readers: dict[str, ArrayReader], gridsize: int, neighbor_count: int | None,
                        chunk: int) -> dict[str, Any]:
    whole = {key: r.read_all() for key, r in readers.items() if key not in PER_POSITION_KEYS}
    per_pos = {key: r for key, r in readers.items() if key in PER_POSITION_KEYS}
    if any(key not in readers for key in REQUIRED_KEYS):
        # Let the contract's own validator word the missing-key error.
        validate_dataset({**whole, **{k: r.read_rows(slice(0, 1)) for k, r in per_pos.items()}},
                         gridsize, neighbor_count)
    n = len(per_pos["diffraction"]) if per_pos["diffraction"].shape else 0
    for key, reader in per_pos.items():
        if not reader.shape or reader.shape[0] != n:
            raise ContractError(f"key {key!r}: expected first dimension n={n}, got shape {reader.shape}")
    meta: dict[str, Any] = {}
    for start in range(0, max(n, 1), chunk):
        rows = slice(start, min(start + chunk, n))
        mapping = dict(whole)
        mapping.update({key: reader.read_rows(rows) for key, reader in per_pos.items()})
        meta = validate_dataset(mapping, gridsize, neighbor_count)
    if n == 0:
        # Checked after the contract so a malformed empty file is reported for what is wrong with it.
        raise ContractError("key 'diffraction': no diffraction patterns (n = 0)")
    return meta
