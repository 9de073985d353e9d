"""The held-out information score: count split, object NLL and the score between flat (0) and truth (1)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage, stats

from fly64_data.physics import extract_patches, far_field_intensity
from fly64_data.sample import raster_scan, synthetic_object, synthetic_probe
from fly64_train.evaluation.metrics import information_score, poisson_nll, split_counts

N = 32


@pytest.fixture(scope="module")
def scan() -> dict:
    """A tiny simulated scan at a high dose (the simulator's own physics), counts and their diffraction."""
    obj = synthetic_object(128, 5).astype(np.complex64)
    probe = synthetic_probe(N)
    x, y = raster_scan(obj.shape, N, 8.0, 5)
    intensity = far_field_intensity(probe * extract_patches(obj, y, x, N)).astype(np.float64)
    scale = float(np.sqrt(1e5 / intensity.sum(axis=(1, 2)).mean()))
    counts = np.random.default_rng(3).poisson(intensity * scale**2)
    return {"obj": obj, "probe": probe, "x": x, "y": y, "scale": scale, "counts": counts,
            "diffraction": (np.sqrt(counts) / scale).astype(np.float32)}


@pytest.fixture(scope="module")
def halves(scan) -> tuple[np.ndarray, np.ndarray]:
    return split_counts(scan["diffraction"], scan["scale"])


def score(scan, halves, recon):
    a, b = halves
    return information_score(recon, scan["obj"], a, b, probe=scan["probe"], ycoords=scan["y"], xcoords=scan["x"],
                             intensity_scale=scan["scale"])


def blur(obj: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(obj.real, sigma) + 1j * ndimage.gaussian_filter(obj.imag, sigma)


def test_split_recovers_the_counts_and_is_fixed_per_key(scan, halves):
    a, b = halves
    np.testing.assert_array_equal(a + b, scan["counts"])  # rounding (s * diffraction)^2 gives the counts back
    # Binomial thinning at one half: A holds about half the photons.
    assert a.sum() / scan["counts"].sum() == pytest.approx(0.5, abs=2e-3)
    again_a, _ = split_counts(scan["diffraction"], scan["scale"])
    np.testing.assert_array_equal(again_a, a)
    # Keyed per pattern: pattern 3 alone, with its key, splits as it did among all patterns.
    one_a, _ = split_counts(scan["diffraction"][3:4], scan["scale"], keys=np.array([3]))
    np.testing.assert_array_equal(one_a[0], a[3])
    other_a, _ = split_counts(scan["diffraction"], scan["scale"], seed=1)
    assert not np.array_equal(other_a, a)


def test_split_refuses_bad_input(scan):
    with pytest.raises(ValueError, match="fraction"):
        split_counts(scan["diffraction"], scan["scale"], fraction=1.0)
    with pytest.raises(ValueError, match="keys"):
        split_counts(scan["diffraction"], scan["scale"], keys=np.arange(2))


def test_nll_is_the_poisson_log_likelihood_of_the_simulated_rates(scan, halves):
    _, b = halves
    rows = slice(0, 4)
    nll = poisson_nll(scan["obj"], b[rows], probe=scan["probe"], ycoords=scan["y"][rows],
                      xcoords=scan["x"][rows], intensity_scale=scan["scale"], fraction=0.5)
    intensity = far_field_intensity(scan["probe"].astype(np.complex128)
                                    * extract_patches(scan["obj"].astype(np.complex128), scan["y"][rows],
                                                      scan["x"][rows], N))
    reference = -stats.poisson.logpmf(b[rows], 0.5 * scan["scale"] ** 2 * intensity).sum(axis=(1, 2))
    np.testing.assert_allclose(nll, reference, rtol=1e-7)  # the only difference: RATE_FLOOR in the log


def test_truth_scores_one_and_flat_scores_zero(scan, halves):
    truth = score(scan, halves, scan["obj"])
    assert truth.info == pytest.approx(1.0, abs=1e-12)
    assert truth.nll_flat - truth.nll_truth > 0
    # Nothing reconstructed (NaN) is the flat object, and so is the fitted constant itself.
    nothing = score(scan, halves, np.full(scan["obj"].shape, np.nan, np.complex64))
    assert nothing.info == pytest.approx(0.0, abs=1e-12)
    constant = score(scan, halves, np.full(scan["obj"].shape, truth.flat_amplitude, np.complex128))
    assert constant.info == pytest.approx(0.0, abs=1e-12)
    # The flat amplitude is the maximum-likelihood constant on A: a bit brighter or darker scores below 0.
    for factor in (0.9, 1.1):
        assert score(scan, halves, np.full(scan["obj"].shape, factor * truth.flat_amplitude)).info < 0


def test_blurred_truth_falls_between_and_falls_with_the_blur(scan, halves):
    values = [score(scan, halves, blur(scan["obj"], sigma)).info for sigma in (0.7, 1.5, 3.0, 6.0)]
    assert all(0 < v < 1 for v in values), values
    assert values == sorted(values, reverse=True), values


def test_scale_and_phase_are_used_as_they_are(scan, halves):
    # A global phase leaves every pattern unchanged: no alignment is needed for it.
    assert score(scan, halves, scan["obj"] * np.exp(0.7j)).info == pytest.approx(1.0, abs=1e-9)
    # A wrong amplitude scale is a real error the likelihood sees (nothing rescales the reconstruction).
    assert score(scan, halves, 0.9 * scan["obj"]).info < 1


def test_unreconstructed_pixels_take_the_flat_amplitude_at_the_reconstructions_phase(scan, halves):
    # A reconstruction with nothing near the object's edge, at two global phases: the fill follows the
    # reconstruction's phase, so the free global phase still changes nothing.
    edge = np.ones(scan["obj"].shape, bool)
    edge[30:-30, 30:-30] = False
    partial = np.where(edge, np.nan, scan["obj"].astype(np.complex128))
    plain, turned = score(scan, halves, partial), score(scan, halves, partial * np.exp(2.0j))
    assert turned.info == pytest.approx(plain.info, abs=1e-9)
    assert 0 < plain.info < 1
