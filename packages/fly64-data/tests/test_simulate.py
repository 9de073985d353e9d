"""Physics and provenance of a real (small) Phase C sweep."""

import json

import numpy as np
import pytest

from fly64_data.contract import METADATA_FIELDS, sha256_file, validate_dataset
from fly64_data.physics import far_field_intensity
from fly64_data.simulate import poisson_counts

DOSES = (1000, 10000, 100000)


def _load(root, dose, split):
    with np.load(root / f"dose_{dose}" / f"patched_{split}.npz", allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    data["meta"] = json.loads(str(data.pop("_metadata")))
    return data


def _all_counts(root, dose):
    parts = [_load(root, dose, s) for s in ("train", "test")]
    scale = parts[0]["meta"]["intensity_scale"]
    return np.concatenate([(p["diffraction"].astype(np.float64) * scale) ** 2 for p in parts]), parts, scale


@pytest.mark.parametrize("dose", DOSES)
def test_mean_counts_per_pattern_match_the_dose(small_sweep, dose):
    counts, parts, _ = _all_counts(small_sweep, dose)
    assert counts.sum(axis=(1, 2)).mean() == pytest.approx(dose, rel=0.01)
    # Counts are integers: sqrt(k)/s round-trips.
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-2 * max(1.0, dose / 1e4))
    manifest = json.loads((small_sweep / "run_manifest.json").read_text())
    rec = next(r for r in manifest["doses"] if r["dose"] == dose)
    assert rec["measured_mean_counts"] == pytest.approx(dose, rel=0.01)


@pytest.mark.parametrize("dose", DOSES)
def test_noise_is_poisson(small_sweep, dose):
    counts, parts, scale = _all_counts(small_sweep, dose)
    probe = parts[0]["probeGuess"]
    expected = np.concatenate([far_field_intensity(probe * p["Y"]) for p in parts]) * scale**2
    bright = expected > 5
    z = (counts[bright] - expected[bright]) / np.sqrt(expected[bright])
    n = int(bright.sum())
    assert n > 500
    # var(counts) ≈ mean: standardized residuals have unit variance, within 4 sigma of the estimate.
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert z.var() == pytest.approx(1.0, abs=4 * np.sqrt(2.5 / n))


def test_poisson_counts_variance_equals_mean_on_flat_field():
    counts, scale = poisson_counts(np.full((400, 8, 8), 1.0, np.float32), dose=64 * 50.0, seed=3)
    assert scale == pytest.approx(np.sqrt(50.0))
    assert counts.mean() == pytest.approx(50.0, rel=0.01)
    assert counts.var() == pytest.approx(50.0, rel=0.05)


def test_positions_identical_across_doses_and_noise_differs(small_sweep):
    ref = _load(small_sweep, DOSES[0], "train")
    for dose in DOSES[1:]:
        other = _load(small_sweep, dose, "train")
        for key in ("xcoords", "ycoords", "scan_index", "Y"):
            np.testing.assert_array_equal(other[key], ref[key])
        assert other["meta"]["seeds"]["noise"] != ref["meta"]["seeds"]["noise"]


def test_train_and_test_are_disjoint_along_y(small_sweep):
    train, test = _load(small_sweep, 1000, "train"), _load(small_sweep, 1000, "test")
    assert train["ycoords"].max() < test["ycoords"].min()
    assert not set(train["scan_index"]) & set(test["scan_index"])
    n_total = json.loads((small_sweep / "run_manifest.json").read_text())["base_sample"]["n_positions"]
    assert len(train["scan_index"]) + len(test["scan_index"]) == n_total


def test_every_file_passes_the_contract_and_records_provenance(small_sweep):
    manifest = json.loads((small_sweep / "run_manifest.json").read_text())
    assert [r["dose"] for r in manifest["doses"]] == list(map(float, DOSES))
    for rec in manifest["doses"]:
        for split, frec in rec["files"].items():
            path = small_sweep / frec["path"]
            meta = validate_dataset(path)
            assert set(METADATA_FIELDS) <= set(meta)
            assert frec["sha256"] == sha256_file(path)
            assert frec["size_bytes"] == path.stat().st_size
            assert meta["sources"][0]["sha256"] == manifest["base_sample"]["sha256"]
            assert [t["step"] for t in meta["data_transformations"]] == ["simulate_diffraction", "train_test_split"]
            assert meta["producer"]["package"] == "fly64-data"
            assert meta["intensity_scale"] == pytest.approx(rec["intensity_scale"])
            assert meta["split"] == split and meta["N"] == 32
    assert not list(small_sweep.glob(".*")), "staging leftovers"


def test_y_matches_ground_truth_patches(small_sweep):
    from fly64_data.physics import extract_patches

    d = _load(small_sweep, 1000, "test")
    np.testing.assert_array_equal(d["Y"], extract_patches(d["objectGuess"], d["ycoords"], d["xcoords"], 32))
