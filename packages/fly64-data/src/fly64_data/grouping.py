"""The gs2 grouping rule: which scan positions make up each training group.

gs1: one pattern per group. gs2: a seed position plus ``C - 1 = 3`` positions
drawn from its K nearest neighbours (so each group is a K-choose-(C-1) draw
around the seed, C = 4 members in all), with offsets measured from the group
centroid. Draws come from a generator seeded with the design's grouping seed,
so the same inputs always give the same groups.

This is the one statement of the rule: the trainer and the evaluation (fly64-train)
group positions with it, and the overlap metrics (fly64-overlap) measure "group
overlap" on exactly these groups. K and the seed default to the study design's
(:data:`fly64_data.design.NEIGHBOR_COUNT`, :data:`fly64_data.design.GROUPING_SEED`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from fly64_data.design import GROUPING_SEED, NEIGHBOR_COUNT

__all__ = ["Groups", "make_groups"]


@dataclass(frozen=True)
class Groups:
    """Position indices and centroid-relative offsets of every group."""

    indices: np.ndarray
    """(G, C) int64 row indices into the dataset's per-position arrays; column 0 is the seed."""
    offsets: np.ndarray
    """(G, C, 2) float64 (dy, dx) of each member relative to its group's centroid, in pixels."""

    def check(self) -> None:
        """Raise ValueError unless ``indices`` is (G, C) integer and ``offsets`` is (G, C, 2)."""
        if self.indices.ndim != 2 or not np.issubdtype(self.indices.dtype, np.integer):
            raise ValueError(f"indices must be a 2-D integer array, got {self.indices.dtype} "
                             f"of shape {self.indices.shape}")
        if self.offsets.shape != (*self.indices.shape, 2):
            raise ValueError(f"offsets must have shape {(*self.indices.shape, 2)}, got {self.offsets.shape}")

    @property
    def group_size(self) -> int:
        return int(self.indices.shape[1])

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def subset(self, rows: np.ndarray) -> Groups:
        return Groups(self.indices[rows], self.offsets[rows])


def make_groups(ycoords: np.ndarray, xcoords: np.ndarray, gridsize: int, neighbor_count: int = NEIGHBOR_COUNT,
                n_groups: int | None = None, seed: int = GROUPING_SEED) -> Groups:
    """Build the training groups of a scan.

    Parameters
    ----------
    ycoords, xcoords : (n,) arrays
        Scan positions (rows, columns) in object pixels.
    gridsize : int
        1 (one pattern per group) or g > 1 (``C = g**2`` patterns per group).
    neighbor_count : int
        K, nearest neighbours a seed's partners are drawn from; needs ``K >= C``.
        Default: the study design's.
    n_groups : int, optional
        Number of groups. Default: one per position. More than ``n`` draws
        seeds round-robin (each seed again with a new neighbour draw); fewer
        takes a seeded random subset of seeds.
    seed : int
        Grouping seed; default: the design's ``rng_seeds['grouping']``.

    Raises
    ------
    ValueError
        If there are fewer positions than one group needs, or K is too small.
    """
    y = np.asarray(ycoords, dtype=np.float64)
    x = np.asarray(xcoords, dtype=np.float64)
    n = y.size
    c = gridsize**2
    if gridsize < 1:
        raise ValueError(f"gridsize must be >= 1, got {gridsize}")
    if n < c:
        raise ValueError(f"{n} positions cannot form groups of {c} (gridsize {gridsize})")
    rng = np.random.default_rng(seed)
    count = n if n_groups is None else int(n_groups)
    if count < 1:
        raise ValueError(f"n_groups must be >= 1, got {count}")
    if count <= n:
        seeds = np.arange(n) if count == n else np.sort(rng.choice(n, size=count, replace=False))
    else:
        seeds = np.arange(count) % n
    if c == 1:
        idx = seeds[:, None].astype(np.int64)
        return Groups(idx, np.zeros((count, 1, 2)))

    if neighbor_count < c:
        raise ValueError(f"neighbor_count K={neighbor_count} must be >= C={c} for gridsize {gridsize}")
    k = min(neighbor_count, n - 1)
    pts = np.column_stack([y, x])
    # k + 1 because the nearest point of a seed is itself; self is then dropped by
    # index (not by position in the answer) so duplicate positions cannot confuse it.
    _, nbr = cKDTree(pts).query(pts, k=k + 1)
    neighbours = np.empty((n, k), dtype=np.int64)
    for i in range(n):
        row = nbr[i][nbr[i] != i]
        neighbours[i] = row[:k]
    # A random permutation per group, truncated to C - 1: a uniform draw without replacement.
    picks = np.argsort(rng.random((count, k)), axis=1)[:, : c - 1]
    partners = np.take_along_axis(neighbours[seeds], picks, axis=1)
    idx = np.concatenate([seeds[:, None], partners], axis=1).astype(np.int64)
    members = pts[idx]  # (G, C, 2) as (y, x)
    offsets = members - members.mean(axis=1, keepdims=True)
    return Groups(idx, offsets)
