"""The gs2 grouping rule: what it draws, that it is seeded, and that the draw never changes."""

from __future__ import annotations

import hashlib
import inspect

import numpy as np
import pytest
from scipy.spatial import cKDTree

from fly64_data.design import GROUPING_SEED, NEIGHBOR_COUNT, get_study_design
from fly64_data.grouping import Groups, make_groups
from fly64_data.sample import raster_scan


@pytest.fixture(scope="module")
def scan() -> tuple[np.ndarray, np.ndarray]:
    """(y, x) of a real jittered raster (the simulator's own), 100 positions."""
    x, y = raster_scan((128, 128), 32, 8.0, 7)
    return y, x


def _fixed_coords() -> tuple[np.ndarray, np.ndarray]:
    # A 7 x 6 raster, 9 px apart, with a sub-pixel jitter from integer arithmetic (no RNG, so the
    # coordinates cannot move with numpy), plus a plain 4 x 4 grid whose equal distances pin the
    # nearest-neighbour tie order.
    i = np.arange(42)
    y = (i // 6) * 9.0 + ((i * 37) % 11) / 11.0
    x = (i % 6) * 9.0 + ((i * 53) % 13) / 13.0
    g = np.arange(16)
    return np.concatenate([y, 100.0 + (g // 4) * 5.0]), np.concatenate([x, 100.0 + (g % 4) * 5.0])


def _digest(groups: Groups) -> str:
    h = hashlib.sha256(np.ascontiguousarray(groups.indices, dtype="<i8").tobytes())
    h.update(np.ascontiguousarray(np.round(groups.offsets, 9), dtype="<f8").tobytes())
    return h.hexdigest()


# Captured from fly64_train.data.grouping.make_groups before the rule moved here (commit 10550c8):
# the groups trained on must stay bit-identical, so these never change with a refactor.
PINNED = {
    (2, 7, None, 123): "d1068cea66894758d6e69a4a787609ea9d15257d545311219e3dfac129779303",
    (2, 7, 20, 123): "3a753af4221cf06639865e4c7bbc828a88de0fcf9c5c038cb286141111a475aa",
    (2, 7, 150, 123): "54b3b64a5db862eb8c356ad91979ae27ebd9477869ab364773ff56f4a02ab35a",
    (2, 5, None, 9): "70788721c442179db34a2e0d8b178264281855cea5a77e45131b8c093c41d861",
    (1, 7, 11, 123): "354fd15965a52693cbc56030444c1dc1b8555b186a00c331849a8fb9f70a8c55",
    (3, 12, None, 123): "67419ef800ed95bfdc7e6a1d9f1bd5fc64ad5ba25319dd7cfc11b52f7ba83f66",
}


@pytest.mark.parametrize(("gridsize", "k", "n_groups", "seed"), list(PINNED))
def test_draw_is_pinned(gridsize, k, n_groups, seed):
    y, x = _fixed_coords()
    groups = make_groups(y, x, gridsize, k, n_groups, seed)
    groups.check()
    assert _digest(groups) == PINNED[(gridsize, k, n_groups, seed)]


def test_first_groups_of_the_default_draw():
    y, x = _fixed_coords()
    first = make_groups(y, x, 2).indices[:5].tolist()
    assert first == [[0, 6, 12, 2], [1, 13, 8, 0], [2, 4, 7, 14], [3, 10, 4, 8], [4, 11, 5, 16]]


def test_defaults_are_the_study_design():
    design = get_study_design()
    assert NEIGHBOR_COUNT == design.neighbor_count and GROUPING_SEED == design.rng_seeds["grouping"]
    params = inspect.signature(make_groups).parameters
    assert params["neighbor_count"].default == design.neighbor_count
    assert params["seed"].default == design.rng_seeds["grouping"]


def test_gs1_is_one_pattern_per_sample(scan):
    y, x = scan
    g = make_groups(y, x, 1)
    assert g.indices.shape == (x.size, 1)
    assert np.array_equal(g.indices[:, 0], np.arange(x.size))
    assert np.all(g.offsets == 0)


def test_gs2_groups_are_seed_plus_three_of_its_seven_nearest(scan):
    y, x = scan
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


def test_duplicate_positions_never_group_a_seed_with_itself():
    y = np.array([5.0, 5.0, 5.0, 5.0, 5.0, 20.0, 20.0, 40.0])
    x = np.zeros(8)
    g = make_groups(y, x, 2, 7)
    assert all(len(set(row)) == 4 for row in g.indices)


def test_grouping_is_seeded(scan):
    y, x = scan
    a = make_groups(y, x, 2, 7, n_groups=50, seed=123)
    b = make_groups(y, x, 2, 7, n_groups=50, seed=123)
    c = make_groups(y, x, 2, 7, n_groups=50, seed=124)
    assert np.array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indices, c.indices)


def test_more_groups_than_positions_draws_new_combinations(scan):
    y, x = scan
    g = make_groups(y, x, 2, 7, n_groups=3 * y.size, seed=123)
    assert len(g) == 3 * y.size
    assert np.array_equal(np.bincount(g.indices[:, 0]), np.full(y.size, 3))
    assert len({tuple(r) for r in g.indices}) > 2 * y.size


def test_too_few_positions_or_neighbours_is_refused():
    with pytest.raises(ValueError, match="cannot form groups of 4"):
        make_groups(np.arange(3.0), np.arange(3.0), 2)
    with pytest.raises(ValueError, match="neighbor_count"):
        make_groups(np.arange(10.0), np.arange(10.0), 2, neighbor_count=3)


def test_check_refuses_misshapen_groups():
    Groups(np.zeros((3, 4), np.int64), np.zeros((3, 4, 2))).check()
    with pytest.raises(ValueError, match="integer"):
        Groups(np.zeros((3, 4)), np.zeros((3, 4, 2))).check()
    with pytest.raises(ValueError, match="offsets must have shape"):
        Groups(np.zeros((3, 4), np.int64), np.zeros((3, 2))).check()
