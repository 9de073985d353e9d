"""Measured overlap of a scan: nearest-neighbour, image-based and group-based.

Every probe footprint is modelled as a disc of the measured probe diameter D
centred on the scan position. Three numbers describe a view:

nearest-neighbour overlap
    Per position, the disc-overlap fraction (lens area / disc area) with its
    nearest other position; reported as mean and distribution.
image-based overlap
    Per position, the share of its disc also covered by at least one other
    disc (the part of the image measured more than once); averaged over
    positions. Estimated on a fixed sunflower lattice of points in the disc.
group-based overlap
    The gs2 groups the trainer trains on (:func:`fly64_data.grouping.make_groups`:
    one group per position, the seed and C - 1 of its K nearest neighbours, same
    K, seed and draw); the mean pairwise disc-overlap fraction inside a group,
    averaged over every group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from fly64_data.design import GROUPING_SEED, NEIGHBOR_COUNT
from fly64_data.grouping import make_groups

HISTOGRAM_EDGES = tuple(np.round(np.linspace(0.0, 1.0, 11), 10).tolist())
PERCENTILES = (5, 25, 50, 75, 95)
DISC_SAMPLES = 256  # lattice points per disc for the image-based estimate (~0.5 % error)
MAX_IMAGES = 10_000  # beyond this the image-based average uses a seeded subset
_GOLDEN_ANGLE = np.pi * (3.0 - np.sqrt(5.0))


@dataclass(frozen=True)
class MetricsConfig:
    """Parameters of the overlap measurement.

    Attributes
    ----------
    diameter : float
        Probe diameter D in pixels.
    neighbor_count : int
        K, nearest neighbours a gs2 group is drawn from; default: the study design's.
    group_size : int
        C, positions per group (gridsize^2, a square of at least 4).
    seed : int
        Grouping seed (the design's by default): the group draw, and the subset of very large scans.
    disc_samples : int
        Lattice points per disc for the image-based coverage.
    max_images : int
        Most positions evaluated for the image-based average (the group average uses every group).
    """

    diameter: float
    neighbor_count: int = NEIGHBOR_COUNT
    group_size: int = 4
    seed: int = GROUPING_SEED
    disc_samples: int = DISC_SAMPLES
    max_images: int = MAX_IMAGES

    @property
    def gridsize(self) -> int:
        """g with ``C = g**2``: the gridsize :func:`make_groups` is asked for."""
        return math.isqrt(self.group_size)

    def check(self) -> None:
        """Raise ValueError unless C is a square >= 4 and K >= C (the grouping rule's own limit)."""
        if self.group_size < 4 or self.gridsize**2 != self.group_size:
            raise ValueError(f"group size C={self.group_size} must be gridsize^2 with gridsize >= 2")
        if self.neighbor_count < self.group_size:
            raise ValueError(f"neighbor_count K={self.neighbor_count} must be >= C={self.group_size}")


def disc_overlap_fraction(distance: np.ndarray | float, diameter: float) -> np.ndarray:
    """Area shared by two equal discs as a fraction of one disc's area.

    ``f(d) = (2/pi) * (acos(u) - u * sqrt(1 - u^2))`` with ``u = d / D``, for
    ``d < D``, else 0. Identical centres give 1; half a diameter gives ~0.391.
    """
    if not diameter > 0:
        raise ValueError(f"diameter must be positive, got {diameter}")
    u = np.clip(np.asarray(distance, dtype=np.float64) / float(diameter), 0.0, 1.0)
    return (2.0 / np.pi) * (np.arccos(u) - u * np.sqrt(1.0 - u * u))


def nearest_neighbour_distances(points: np.ndarray, tree: cKDTree | None = None) -> np.ndarray:
    """Distance from each point to its nearest other point (empty for fewer than 2 points)."""
    if len(points) < 2:
        return np.zeros(0)
    tree = tree or cKDTree(points)
    dist, _ = tree.query(points, k=[2])
    return dist[:, 0]


def unit_disc_lattice(count: int) -> np.ndarray:
    """``count`` evenly spread points inside the unit disc (sunflower lattice), shape (count, 2)."""
    k = np.arange(count, dtype=np.float64)
    r = np.sqrt((k + 0.5) / count)
    theta = k * _GOLDEN_ANGLE
    return np.column_stack([r * np.cos(theta), r * np.sin(theta)])


def image_coverage(points: np.ndarray, config: MetricsConfig, subset: np.ndarray,
                   tree: cKDTree | None = None) -> np.ndarray:
    """Share of each selected disc covered by at least one other disc, shape (len(subset),)."""
    if len(points) < 2 or subset.size == 0:
        return np.zeros(subset.size)
    tree = tree or cKDTree(points)
    radius = 0.5 * config.diameter
    offsets = unit_disc_lattice(config.disc_samples) * radius
    samples = (points[subset][:, None, :] + offsets[None, :, :]).reshape(-1, 2)
    # Each sample lies inside its own disc, so it is covered by another disc
    # exactly when its second-nearest centre is closer than the radius too.
    second, _ = tree.query(samples, k=[2], distance_upper_bound=radius)
    covered = np.isfinite(second[:, 0]) & (second[:, 0] < radius)
    return covered.reshape(subset.size, config.disc_samples).mean(axis=1)


def group_overlaps(points: np.ndarray, config: MetricsConfig) -> np.ndarray:
    """Mean pairwise disc overlap inside each gs2 group the trainer draws, shape (n,).

    ``points`` are (x, y) rows. The groups are :func:`fly64_data.grouping.make_groups`' with
    ``config``'s K and seed, one per position: the groups Phase E trains on (and evaluates with).
    Empty when there are fewer than C points (no group can be formed).
    """
    config.check()
    c = config.group_size
    if len(points) < c:
        return np.zeros(0)
    groups = make_groups(points[:, 1], points[:, 0], config.gridsize, config.neighbor_count, None, config.seed)
    xy = points[groups.indices]  # (G, C, 2)
    dist = np.linalg.norm(xy[:, :, None, :] - xy[:, None, :, :], axis=-1)
    iu = np.triu_indices(c, 1)
    return disc_overlap_fraction(dist[:, iu[0], iu[1]], config.diameter).mean(axis=1)


def _subset(n: int, limit: int, seed: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def _mean_or_none(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def measure_overlap(xcoords: np.ndarray, ycoords: np.ndarray, config: MetricsConfig) -> dict[str, object]:
    """All overlap metrics of one set of positions, as a JSON-ready dict.

    Values that need more positions than there are (a neighbour, or C
    positions for a group) are ``None``.
    """
    points = np.column_stack([np.asarray(xcoords, np.float64), np.asarray(ycoords, np.float64)])
    n = len(points)
    tree = cKDTree(points) if n else None
    nn_dist = nearest_neighbour_distances(points, tree)
    nn = disc_overlap_fraction(nn_dist, config.diameter)
    subset = _subset(n, config.max_images, config.seed)
    coverage = image_coverage(points, config, subset, tree)
    groups = group_overlaps(points, config)
    counts, _ = np.histogram(nn, bins=np.asarray(HISTOGRAM_EDGES))
    return {
        "n_positions": n,
        "nearest_neighbour": {
            "mean": _mean_or_none(nn),
            "std": float(nn.std()) if nn.size else None,
            "min": float(nn.min()) if nn.size else None,
            "max": float(nn.max()) if nn.size else None,
            "percentiles": {f"p{p}": float(np.percentile(nn, p)) if nn.size else None for p in PERCENTILES},
            "histogram": {"edges": list(HISTOGRAM_EDGES), "counts": counts.astype(int).tolist()},
            "distance_px": {
                "min": float(nn_dist.min()) if nn_dist.size else None,
                "mean": _mean_or_none(nn_dist),
                "median": float(np.median(nn_dist)) if nn_dist.size else None,
            },
        },
        "image_based": {
            "mean": _mean_or_none(coverage) if n >= 2 else None,
            "disc_samples": config.disc_samples,
            "images_evaluated": int(subset.size) if n >= 2 else 0,
        },
        "group_based": {
            "mean": _mean_or_none(groups),
            "neighbor_count": config.neighbor_count,
            "group_size": config.group_size,
            "groups_evaluated": int(groups.size),
            "seed": config.seed,
        },
    }
