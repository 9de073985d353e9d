"""Deterministic minimum-spacing selection of scan positions.

The rule: visit the positions in a seeded random order and keep a position
unless a position kept earlier lies closer than the spacing ``S``. The kept set
is a maximal S-separated subset (every rejected position has a kept one within
``S``), and the same seed always gives the same set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree


@dataclass(frozen=True)
class Selection:
    """Result of a minimum-spacing selection.

    Attributes
    ----------
    mask : numpy.ndarray
        Boolean (n,), True for kept positions; order follows the input.
    spacing : float
        The minimum spacing S in pixels every kept pair respects.
    seed : int
        Seed of the visiting order.
    """

    mask: np.ndarray
    spacing: float
    seed: int

    @property
    def kept(self) -> int:
        return int(self.mask.sum())

    @property
    def rejected(self) -> int:
        return int(self.mask.size - self.mask.sum())

    @property
    def indices(self) -> np.ndarray:
        """Indices of the kept positions, ascending (the input order is preserved)."""
        return np.flatnonzero(self.mask)


def visiting_order(n: int, seed: int) -> np.ndarray:
    """The seeded permutation in which positions are considered."""
    return np.random.default_rng(seed).permutation(n)


def select_min_spacing(xcoords: np.ndarray, ycoords: np.ndarray, spacing: float, seed: int) -> Selection:
    """Keep a maximal subset of positions whose pairwise distances are all >= ``spacing``.

    Parameters
    ----------
    xcoords, ycoords : numpy.ndarray
        Positions (n,) in pixels.
    spacing : float
        Minimum spacing S > 0. Pairs at exactly S are allowed.
    seed : int
        Seed of the visiting order (the design's subsampling seed).

    Returns
    -------
    Selection

    Notes
    -----
    Cost is O(n log n): one KD-tree build, one pass over the positions, and one
    ball query per *kept* position (a rejected position is never queried). The
    ball query uses a radius a hair below S so that a pair at exactly S, which
    the rule allows, is not treated as a conflict.
    """
    x = np.asarray(xcoords, dtype=np.float64).ravel()
    y = np.asarray(ycoords, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"xcoords and ycoords differ in length ({x.size} vs {y.size})")
    if not spacing > 0:
        raise ValueError(f"spacing must be positive, got {spacing}")
    n = x.size
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return Selection(mask, float(spacing), int(seed))
    points = np.column_stack([x, y])
    tree = cKDTree(points)
    radius = float(np.nextafter(spacing, 0.0))
    # bytearray indexing is far cheaper than numpy scalar indexing inside the loop.
    blocked = bytearray(n)
    kept: list[int] = []
    for i in visiting_order(n, seed).tolist():
        if blocked[i]:
            continue
        kept.append(i)
        for j in tree.query_ball_point(points[i], radius):
            blocked[j] = 1
    mask[np.asarray(kept, dtype=np.int64)] = True
    return Selection(mask, float(spacing), int(seed))
