"""Equal-positions controls: thin a set of positions to a given count, keeping its overlap.

A random subset of a dense scan would be a sparser scan: its overlap would fall
with its count, and the control would confound the two again. The subset is
therefore *compact*: the ``count`` positions nearest an anchor (the position
nearest the centroid). Inside that patch every position keeps its neighbours,
so the local overlap is the parent's; what shrinks is the scanned area.
Ties in distance are broken by the seeded visiting order of the selection rule,
so the same inputs and seed always give the same subset.
"""

from __future__ import annotations

import numpy as np

from fly64_overlap.selection import visiting_order


def select_compact(xcoords: np.ndarray, ycoords: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Boolean mask of the ``count`` positions nearest the position closest to the centroid.

    Parameters
    ----------
    xcoords, ycoords : numpy.ndarray
        Positions (n,) in pixels.
    count : int
        How many to keep, 0 <= count <= n.
    seed : int
        Seed of the tie-breaking order (the design's subsampling seed).

    Raises
    ------
    ValueError
        If ``count`` is out of range or the coordinate arrays differ in length.
    """
    x = np.asarray(xcoords, dtype=np.float64).ravel()
    y = np.asarray(ycoords, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"xcoords and ycoords differ in length ({x.size} vs {y.size})")
    n = x.size
    if not 0 <= count <= n:
        raise ValueError(f"cannot keep {count} of {n} positions")
    mask = np.zeros(n, dtype=bool)
    if count == 0:
        return mask
    rank = np.empty(n, dtype=np.int64)
    rank[visiting_order(n, seed)] = np.arange(n)
    to_centroid = np.hypot(x - x.mean(), y - y.mean())
    anchor = int(np.lexsort((rank, to_centroid))[0])
    to_anchor = np.hypot(x - x[anchor], y - y[anchor])
    mask[np.lexsort((rank, to_anchor))[:count]] = True
    return mask
