import numpy as np
import pytest

from fly64_data.design import get_study_design
from fly64_data.grouping import make_groups
from fly64_overlap.metrics import MetricsConfig, disc_overlap_fraction, measure_overlap
from fly64_overlap.probe import measure_probe_diameter

D = 40.0
HALF = (2 / np.pi) * (np.arccos(0.5) - 0.5 * np.sqrt(0.75))  # lens area / disc area at d = D/2, ~0.391


def _measure(x, y, **kw):
    return measure_overlap(np.asarray(x, float), np.asarray(y, float), MetricsConfig(diameter=D, **kw))


def test_disc_overlap_fraction_known_values():
    np.testing.assert_allclose(disc_overlap_fraction([0.0, D / 2, D, 2 * D], D), [1.0, HALF, 0.0, 0.0],
                               atol=1e-12)
    assert 0.39 < HALF < 0.392
    with pytest.raises(ValueError):
        disc_overlap_fraction(1.0, 0.0)


def test_identical_points_overlap_fully():
    m = _measure([50.0] * 8, [50.0] * 8)
    assert m["nearest_neighbour"]["mean"] == pytest.approx(1.0)
    assert m["image_based"]["mean"] == pytest.approx(1.0)
    assert m["group_based"]["mean"] == pytest.approx(1.0)
    assert m["nearest_neighbour"]["histogram"]["counts"][-1] == 8


def test_points_at_least_one_diameter_apart_do_not_overlap():
    g = np.arange(3) * D  # exactly one diameter apart on a 3 x 3 grid
    gy, gx = np.meshgrid(g, g, indexing="ij")
    m = _measure(gx.ravel(), gy.ravel())
    assert m["nearest_neighbour"]["mean"] == 0.0
    assert m["nearest_neighbour"]["max"] == 0.0
    assert m["image_based"]["mean"] == 0.0
    assert m["group_based"]["mean"] == 0.0
    assert m["nearest_neighbour"]["distance_px"]["min"] == pytest.approx(D)


def test_half_diameter_pair():
    m = _measure([0.0, D / 2], [0.0, 0.0])
    assert m["nearest_neighbour"]["mean"] == pytest.approx(HALF)
    # Image-based coverage of a pair equals the lens fraction; the lattice estimate is within 1 %.
    assert m["image_based"]["mean"] == pytest.approx(HALF, abs=0.01)
    assert m["group_based"]["mean"] is None  # 2 points cannot form a group of C = 4


def test_image_based_counts_union_not_sum():
    # A disc flanked on both sides at D/2 is covered by the union of two lenses that do not overlap
    # each other inside it, so its coverage is 2 x HALF, while the nearest-neighbour value stays HALF.
    m = _measure([0.0, D / 2, D], [0.0, 0.0, 0.0], max_images=10)
    nn = m["nearest_neighbour"]
    assert nn["mean"] == pytest.approx(HALF)
    # Mean of (HALF, 2 HALF - tiny triple region, HALF): the outer discs' lenses don't touch in the middle.
    assert m["image_based"]["mean"] == pytest.approx((4 * HALF) / 3, abs=0.02)


def test_group_based_on_a_line_of_eight():
    # 8 points on a line at D/2: each group is the seed and 3 of its 7 neighbours; overlap is
    # positive but below the nearest-neighbour value because some members are >= D apart.
    x = np.arange(8) * D / 2
    m = _measure(x, np.zeros(8))
    g = m["group_based"]
    assert g["groups_evaluated"] == 8 and g["group_size"] == 4 and g["neighbor_count"] == 7
    assert 0.0 < g["mean"] < HALF
    assert m == _measure(x, np.zeros(8))  # seeded: the same groups every time


def _trainer_group_overlap(x, y, diameter):
    """Mean pairwise disc overlap of the groups the trainer draws (design K and seed), computed here."""
    groups = make_groups(y, x, 2)
    pts = np.column_stack([x, y])[groups.indices]
    pairs = [np.hypot(*(pts[:, i] - pts[:, j]).T) for i in range(4) for j in range(i + 1, 4)]
    return float(np.mean([disc_overlap_fraction(d, diameter) for d in pairs], axis=0).mean())


def test_group_overlap_is_measured_on_the_trainers_groups():
    # A plain raster: equal distances everywhere, so a draw of its own (a tree on (x, y) rows instead of
    # the trainer's (y, x)) would break ties differently and measure other groups (0.521 against 0.532).
    g = np.arange(6) * D / 4
    gy, gx = np.meshgrid(g, g, indexing="ij")
    x, y = gx.ravel(), gy.ravel()
    m = _measure(x, y)["group_based"]
    design = get_study_design()
    assert m["neighbor_count"] == design.neighbor_count and m["seed"] == design.rng_seeds["grouping"]
    assert m["groups_evaluated"] == x.size
    assert m["mean"] == pytest.approx(_trainer_group_overlap(x, y, D), rel=1e-12)


def test_group_overlap_follows_the_trainer_below_k_and_above_max_images():
    # 5 positions: the trainer still groups them (K shrinks to n - 1), so the overlap is measured;
    # 3 cannot make a group of 4, for the trainer or here.
    x5 = np.arange(5) * D / 4
    m = _measure(x5, np.zeros(5))["group_based"]
    assert m["groups_evaluated"] == 5
    assert m["mean"] == pytest.approx(_trainer_group_overlap(x5, np.zeros(5), D), rel=1e-12)
    assert _measure(x5[:3], np.zeros(3))["group_based"]["mean"] is None
    # Past max_images the image-based average subsets, the group average still covers every group.
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 400, (2, 300))
    m = _measure(x, y, max_images=100)
    assert m["image_based"]["images_evaluated"] == 100 and m["group_based"]["groups_evaluated"] == 300
    assert m["group_based"]["mean"] == pytest.approx(_trainer_group_overlap(x, y, D), rel=1e-12)


def test_metrics_config_takes_the_design_defaults_and_checks_c_and_k():
    design = get_study_design()
    cfg = MetricsConfig(diameter=D)
    assert cfg.neighbor_count == design.neighbor_count and cfg.seed == design.rng_seeds["grouping"]
    cfg.check()
    with pytest.raises(ValueError, match="gridsize"):
        MetricsConfig(diameter=D, group_size=3).check()
    with pytest.raises(ValueError, match="neighbor_count"):
        MetricsConfig(diameter=D, neighbor_count=3).check()


def test_probe_diameter_of_a_hard_disc_and_of_the_study_probe():
    n = 128
    yy, xx = np.mgrid[0:n, 0:n] - n / 2
    hard = (np.hypot(yy, xx) <= 30).astype(np.complex64)
    d = measure_probe_diameter(hard)
    assert d.value_px == pytest.approx(60 * np.sqrt(0.95), rel=0.03)
    assert d.centre_px == pytest.approx((n / 2, n / 2))
    from fly64_data.sample import synthetic_probe

    study = measure_probe_diameter(synthetic_probe(n)).value_px
    assert 0.9 * 2 * 0.19 * n < study < 1.05 * 2 * 0.19 * n


def test_probe_diameter_rejects_empty_probe():
    with pytest.raises(ValueError, match="no finite, non-zero intensity"):
        measure_probe_diameter(np.zeros((8, 8), np.complex64))
