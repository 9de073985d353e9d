import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from fly64_overlap.selection import select_min_spacing, visiting_order


def _jittered_raster(n_side, step=20.0, jitter=2.0, seed=0):
    rng = np.random.default_rng(seed)
    g = np.arange(n_side) * step
    gy, gx = np.meshgrid(g, g, indexing="ij")
    return gx.ravel() + rng.uniform(-jitter, jitter, gx.size), gy.ravel() + rng.uniform(-jitter, jitter, gx.size)


def _reference_greedy(x, y, spacing, seed):
    """O(n^2) statement of the rule: visit in the seeded order, keep if no kept point is closer than S."""
    d = squareform(pdist(np.column_stack([x, y])))
    kept = []
    for i in visiting_order(len(x), seed):
        if all(d[i, j] >= spacing for j in kept):
            kept.append(i)
    mask = np.zeros(len(x), bool)
    mask[kept] = True
    return mask


@pytest.mark.parametrize("spacing", [38.4, 102.4])
def test_every_kept_pair_is_at_least_s_apart_and_selection_is_maximal(spacing):
    x, y = _jittered_raster(30)
    sel = select_min_spacing(x, y, spacing, seed=456)
    pts = np.column_stack([x, y])
    kept = pts[sel.mask]
    assert sel.kept >= 2
    assert pdist(kept).min() >= spacing
    # Maximal: every rejected position has a kept one closer than S (else it should have been kept).
    d_rej = np.linalg.norm(pts[~sel.mask][:, None] - kept[None], axis=-1).min(axis=1)
    assert np.all(d_rej < spacing)
    assert sel.kept + sel.rejected == x.size


def test_matches_the_quadratic_reference_rule():
    x, y = _jittered_raster(15, seed=3)
    for spacing in (25.0, 38.4, 102.4):
        sel = select_min_spacing(x, y, spacing, seed=456)
        np.testing.assert_array_equal(sel.mask, _reference_greedy(x, y, spacing, 456))


def test_same_seed_same_selection_other_seed_other_selection():
    x, y = _jittered_raster(25)
    a = select_min_spacing(x, y, 38.4, seed=456)
    b = select_min_spacing(x.copy(), y.copy(), 38.4, seed=456)
    c = select_min_spacing(x, y, 38.4, seed=457)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert not np.array_equal(a.mask, c.mask)


def test_pair_at_exactly_s_is_kept_and_closer_pair_is_not():
    assert select_min_spacing([0.0, 10.0], [0.0, 0.0], 10.0, seed=1).kept == 2
    assert select_min_spacing([0.0, 9.999], [0.0, 0.0], 10.0, seed=1).kept == 1


def test_identical_points_keep_one_and_indices_preserve_input_order():
    sel = select_min_spacing([5.0, 5.0, 5.0, 100.0], [5.0, 5.0, 5.0, 0.0], 1.0, seed=0)
    assert sel.kept == 2 and sel.mask[3]
    assert list(sel.indices) == sorted(sel.indices)


def test_empty_input_and_bad_arguments():
    assert select_min_spacing([], [], 5.0, seed=0).kept == 0
    with pytest.raises(ValueError, match="spacing must be positive"):
        select_min_spacing([0.0], [0.0], 0.0, seed=0)
    with pytest.raises(ValueError, match="differ in length"):
        select_min_spacing([0.0, 1.0], [0.0], 1.0, seed=0)
