from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from fly64_train.data.grouping import make_groups


def test_gs1_is_one_pattern_per_sample(tiny_sim):
    g = make_groups(tiny_sim["y"], tiny_sim["x"], 1)
    assert g.indices.shape == (tiny_sim["x"].size, 1)
    assert np.array_equal(g.indices[:, 0], np.arange(tiny_sim["x"].size))
    assert np.all(g.offsets == 0)


def test_gs2_groups_are_seed_plus_three_of_its_seven_nearest(tiny_sim):
    y, x = tiny_sim["y"], tiny_sim["x"]
    g = make_groups(y, x, 2, 7, seed=123)
    pts = np.column_stack([y, x])
    _, nbr = cKDTree(pts).query(pts, k=8)
    assert g.indices.shape == (y.size, 4)
    for row in g.indices:
        seed, partners = row[0], row[1:]
        assert len(set(row)) == 4
        assert set(partners) <= set(nbr[seed][1:])
    # Offsets are relative to each group's centroid.
    centroid = pts[g.indices].mean(axis=1)
    assert np.allclose(pts[g.indices] - centroid[:, None], g.offsets)
    assert np.allclose(g.offsets.sum(axis=1), 0)


def test_grouping_is_seeded(tiny_sim):
    y, x = tiny_sim["y"], tiny_sim["x"]
    a = make_groups(y, x, 2, 7, n_groups=50, seed=123)
    b = make_groups(y, x, 2, 7, n_groups=50, seed=123)
    c = make_groups(y, x, 2, 7, n_groups=50, seed=124)
    assert np.array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indices, c.indices)


def test_more_groups_than_positions_draws_new_combinations(tiny_sim):
    y, x = tiny_sim["y"], tiny_sim["x"]
    g = make_groups(y, x, 2, 7, n_groups=3 * y.size, seed=123)
    assert len(g) == 3 * y.size
    assert np.array_equal(np.bincount(g.indices[:, 0]), np.full(y.size, 3))
    assert len({tuple(r) for r in g.indices}) > 2 * y.size


def test_too_few_positions_or_neighbours_is_refused():
    with pytest.raises(ValueError, match="cannot form groups of 4"):
        make_groups(np.arange(3.0), np.arange(3.0), 2)
    with pytest.raises(ValueError, match="neighbor_count"):
        make_groups(np.arange(10.0), np.arange(10.0), 2, neighbor_count=3)
