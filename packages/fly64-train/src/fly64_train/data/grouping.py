"""Grouping scan positions into training samples.

gs1: one pattern per sample. gs2: a seed position plus ``C - 1 = 3`` positions
drawn from its ``K = 7`` nearest neighbours (so each group is a K-choose-(C-1)
draw around the seed, C = 4 members in all), with offsets measured from the
group centroid. Draws come from a generator seeded with the design's grouping
seed, so the same inputs always give the same groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree


@dataclass(frozen=True)
class Groups:
    """Position indices and centroid-relative offsets of every group.

    Attributes
    ----------
    indices : (G, C) int64
        Row indices into the dataset's per-position arrays; column 0 is the seed.
    offsets : (G, C, 2) float64
        (dy, dx) of each member relative to its group's centroid, in pixels.
    """

    indices: np.ndarray
    offsets: np.ndarray

    @property
    def group_size(self) -> int:
        return int(self.indices.shape[1])

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def subset(self, rows: np.ndarray) -> Groups:
        return Groups(self.indices[rows], self.offsets[rows])


def make_groups(ycoords: np.ndarray, xcoords: np.ndarray, gridsize: int, neighbor_count: int = 7,
                n_groups: int | None = None, seed: int = 123) -> Groups:
    """Build the training groups of a scan.

    Parameters
    ----------
    ycoords, xcoords : (n,) arrays
        Scan positions (rows, columns) in object pixels.
    gridsize : int
        1 (one pattern per group) or g > 1 (``C = g**2`` patterns per group).
    neighbor_count : int
        K, nearest neighbours a seed's partners are drawn from; needs ``K >= C - 1``.
    n_groups : int, optional
        Number of groups. Default: one per position. More than ``n`` draws
        seeds round-robin (each seed again with a new neighbour draw); fewer
        takes a seeded random subset of seeds.
    seed : int
        Grouping seed (the design's ``rng_seeds['grouping']``).

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


def split_groups(groups: Groups, val_fraction: float, seed: int) -> tuple[Groups, Groups | None]:
    """Train and validation groups: the one split rule every backend uses.

    A seeded permutation holds out ``round(val_fraction * G)`` groups (at least one when
    ``val_fraction > 0`` and there are two groups or more); both parts keep file order, so
    the same seed gives the same rows whichever framework trains.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(groups))
    n_val = max(1, int(round(val_fraction * len(groups)))) if val_fraction > 0 and len(groups) > 1 else 0
    train = groups.subset(np.sort(order[n_val:]))
    return train, (groups.subset(np.sort(order[:n_val])) if n_val else None)
