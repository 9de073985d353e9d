"""Predict the object patch at every position of a test split with any backend's model (numpy only)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fly64_data.grouping import make_groups
from fly64_train.data.reader import DatasetInfo, dataset_of

if TYPE_CHECKING:
    from fly64_train.core.seam import LoadedModel


@dataclass(frozen=True)
class PredictedPatches:
    """One predicted object patch per scan position."""

    patches: np.ndarray
    """(n, N, N) complex64, row k the patch at position k."""
    ycoords: np.ndarray
    """(n,) position rows, object pixels."""
    xcoords: np.ndarray
    """(n,) position columns, object pixels."""


def predict_patches(model: LoadedModel, path: str | os.PathLike | DatasetInfo,
                    *, neighbor_count: int, grouping_seed: int,
                    batch_size: int,
                    patterns: np.ndarray | Callable[[np.ndarray], np.ndarray] | None = None) -> PredictedPatches:
    """Object patch at every position of a dataset (gs2: each position predicted as its group's seed).

    ``path`` is a file (validated against DATA-001 before any pattern is read) or a dataset already
    opened by :func:`~fly64_train.data.reader.open_dataset` (not opened again); patterns are
    read lazily, one batch of groups at a time. ``patterns`` replaces the file's
    diffraction, e.g. half of each pattern's photons for the information score:
    an (n, N, N) float32 array (row k at position k) or a function of row indices
    returning those rows (so they too can be made one batch at a time); the file
    still gives the positions and the grouping.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    info = dataset_of(path, model.gridsize, neighbor_count)
    if info.patch_size != model.patch_size:
        raise ValueError(f"{info.path}: patterns are {info.patch_size} px but the model was trained on "
                         f"N = {model.patch_size}")
    n = info.patch_size
    if patterns is None:
        read_rows = info.diffraction.read_rows
    elif callable(patterns):
        read_rows = patterns
    else:
        if np.shape(patterns) != (info.n, n, n):
            raise ValueError(f"{info.path}: patterns to predict from must be ({info.n}, {n}, {n}), got "
                             f"{np.shape(patterns)}")
        read_rows = patterns.__getitem__
    out = np.empty((info.n, n, n), np.complex64)
    if model.gridsize > 1 and model.per_pattern:
        # A shared single-pattern CNN: a seed's patch depends on the seed's pattern alone, so every
        # position goes through the CNN once (C of them per model row) instead of with C - 1 neighbours.
        _predict_each_pattern(model, info, out, batch_size, read_rows)
        return PredictedPatches(out, info.ycoords, info.xcoords)
    groups = make_groups(info.ycoords, info.xcoords, model.gridsize, neighbor_count, None, grouping_seed)
    for start in range(0, len(groups), batch_size):
        idx = groups.indices[start:start + batch_size]
        diff = read_rows(idx.ravel()).reshape(*idx.shape, n, n)
        out[idx[:, 0]] = model.predict_object(diff)[:, 0]  # column 0 is the seed: every position exactly once
    return PredictedPatches(out, info.ycoords, info.xcoords)


def _predict_each_pattern(model: LoadedModel, info: DatasetInfo, out: np.ndarray, batch_size: int,
                          read_rows: Callable[[np.ndarray], np.ndarray]) -> None:
    c, n = model.gridsize**2, info.patch_size
    # batch_size patterns per forward pass (rounded up to whole model rows): the CNN's cost per call is
    # then the same as gs1's at that batch size, which is where it runs fastest on a CPU.
    step = -(-batch_size // c) * c
    for start in range(0, info.n, step):
        rows = np.arange(start, min(start + step, info.n))
        # The last rows fill a whole model row by repeating the final pattern; the copies are dropped.
        padded = np.concatenate([rows, np.full(-len(rows) % c, rows[-1])])
        diff = read_rows(padded).reshape(-1, c, n, n)
        out[rows] = model.predict_object(diff).reshape(-1, n, n)[: len(rows)]
