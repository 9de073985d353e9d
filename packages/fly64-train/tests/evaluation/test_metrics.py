"""Metrics on known images: the fly64 synthetic object itself, shifted, noisier, rescaled, re-phased."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fly64_data.sample import synthetic_object
from fly64_train.evaluation import metrics as M

SIZE = 160


@pytest.fixture(scope="module")
def big() -> np.ndarray:
    """A complex object larger than the test images, so shifted crops are true shifts (no wrap-around)."""
    return synthetic_object(SIZE + 32, 11).astype(np.complex128)


@pytest.fixture(scope="module")
def obj(big) -> np.ndarray:
    return big[16:16 + SIZE, 16:16 + SIZE]


def _components(obj: np.ndarray) -> dict[str, np.ndarray]:
    return {"amplitude": np.abs(obj), "phase": np.angle(obj)}


@pytest.mark.parametrize("component", ["amplitude", "phase"])
def test_identical_images_score_perfectly(obj, component):
    img = _components(obj)[component]
    s = M.score_pair(img.copy(), img, wrapped=component == "phase")
    assert s.mae == 0 and s.psnr == math.inf
    assert s.ssim == pytest.approx(1.0, abs=1e-12) and s.ms_ssim == pytest.approx(1.0, abs=1e-12)
    assert s.pearson == pytest.approx(1.0, abs=1e-12)
    assert s.frc50 is None and s.frc_1_7 is None
    assert s.as_json() == {"mae": 0.0, "psnr": None, "ssim": 1.0, "ms_ssim": 1.0, "frc50": None, "frc_1_7": None,
                           "pearson": 1.0}


def test_frc_of_an_image_with_itself_never_crosses(obj):
    for img in _components(obj).values():
        curve = M.frc(img, img.copy())
        assert np.all(curve.curve > 1 - 1e-9)
        assert curve.frequency[0] > 0 and curve.frequency[-1] == pytest.approx(0.5)
        assert curve.crossing(0.5) is None and curve.crossing(1 / 7) is None


def test_noisier_images_score_worse_monotonically(obj):
    amp = np.abs(obj)
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(amp.shape)
    scores = [M.score_pair(amp + sigma * noise, amp) for sigma in (0.003, 0.01, 0.03, 0.1, 0.3)]
    for worse, better in zip(scores[1:], scores[:-1], strict=True):
        assert worse.mae > better.mae and worse.psnr < better.psnr
        assert worse.ssim < better.ssim and worse.ms_ssim < better.ms_ssim and worse.pearson < better.pearson
        assert worse.frc50 is not None
        assert better.frc50 is None or worse.frc50 < better.frc50
        assert better.frc_1_7 is None or worse.frc_1_7 < better.frc_1_7


def test_shifted_images_score_worse_monotonically(big, obj):
    amp_big, ref = np.abs(big), np.abs(obj)
    scores = [M.score_pair(amp_big[16 + s:16 + s + SIZE, 16:16 + SIZE], ref) for s in (0, 1, 2, 4, 8)]
    assert scores[0].ssim == pytest.approx(1.0)
    for worse, better in zip(scores[1:], scores[:-1], strict=True):
        assert worse.mae > better.mae and worse.psnr < better.psnr
        assert worse.ssim < better.ssim and worse.ms_ssim < better.ms_ssim and worse.pearson < better.pearson
        assert worse.frc50 is not None and (better.frc50 is None or worse.frc50 < better.frc50)


def test_amplitude_metrics_ignore_a_global_scale(obj):
    amp = np.abs(obj)
    for factor in (0.37, 1.0, 4.2):
        aligned, scale = M.align_amplitude(factor * amp, amp)
        assert scale == pytest.approx(1 / factor, rel=1e-12)
        s = M.score_pair(aligned, amp)
        assert s.ssim == pytest.approx(1.0, abs=1e-9) and s.mae < 1e-12 and s.frc50 is None


@pytest.mark.parametrize("offset, gy, gx", [(0.0, 0.0, 0.0), (2.9, 0.0, 0.0), (-1.3, 0.07, -0.11),
                                            (0.4, -0.2, 0.15)])
def test_phase_metrics_ignore_a_global_offset_and_a_linear_ramp(obj, offset, gy, gx):
    # The steeper ramps wrap the phase many times across the image.
    phase = np.angle(obj)
    rows, cols = np.mgrid[:SIZE, :SIZE]
    shifted = M.wrap(phase + offset + gy * rows + gx * cols)
    aligned, plane = M.align_phase(shifted, phase)
    assert np.abs(aligned - phase).max() < 1e-6
    assert (plane.gy, plane.gx) == (pytest.approx(-gy, abs=1e-9), pytest.approx(-gx, abs=1e-9))
    s = M.score_pair(aligned, phase, wrapped=True)
    assert s.mae < 1e-6 and s.ssim == pytest.approx(1.0, abs=1e-9) and s.pearson == pytest.approx(1.0, abs=1e-9)
    assert s.frc50 is None


def test_phase_alignment_does_not_hide_a_real_error(obj):
    phase = np.angle(obj)
    wrong = phase.copy()
    wrong[40:80, 40:80] += 0.5  # local error: no plane can remove it
    aligned, _ = M.align_phase(wrong, phase)
    assert M.score_pair(aligned, phase, wrapped=True).mae > 0.01


def test_single_scale_ssim_components_match_scikit_image(obj):
    amp = np.abs(obj)
    rng = np.random.default_rng(0)
    noisy = amp + 0.05 * rng.standard_normal(amp.shape)
    for sigma in (1.0, 1.5):
        _, _, mean_ssim = M.ssim_components(noisy, amp, 0.4, sigma)
        assert mean_ssim == pytest.approx(M.ssim(noisy, amp, 0.4, sigma), abs=1e-12)


def test_ms_ssim_uses_the_scales_that_fit_and_refuses_tiny_images(obj):
    amp = np.abs(obj)
    small, tiny = amp[:40, :40], amp[:12, :12]
    noisy = small + 0.02 * np.random.default_rng(1).standard_normal(small.shape)
    value = M.ms_ssim(noisy, small, 0.4, sigma=1.0)
    assert 0 < value < 1
    with pytest.raises(ValueError, match="too small for MS-SSIM"):
        M.ms_ssim(tiny, tiny, 0.4, sigma=1.0)


def test_psnr_uses_the_data_range_not_255(obj):
    amp = np.abs(obj)
    noisy = amp + 0.01
    assert M.psnr(noisy, amp, 1.0) == pytest.approx(40.0, abs=1e-6)
    assert M.psnr(noisy, amp, 0.1) == pytest.approx(20.0, abs=1e-6)


def _gappy_mask(shape: tuple[int, int]) -> np.ndarray:
    """Round lit discs on a grid with unlit gaps between them, like a sparse scan's footprints."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, bool)
    for cy in range(12, shape[0], 34):
        for cx in range(12, shape[1], 34):
            mask |= (rows - cy) ** 2 + (cols - cx) ** 2 <= 14**2
    return mask


def test_an_all_true_mask_changes_no_metric(obj):
    amp = np.abs(obj)
    noisy = amp + 0.02 * np.random.default_rng(5).standard_normal(amp.shape)
    plain, masked = M.score_pair(noisy, amp), M.score_pair(noisy, amp, mask=np.ones(amp.shape, bool))
    for name in M.METRIC_NAMES:
        a, b = getattr(plain, name), getattr(masked, name)
        assert (a is None and b is None) or b == pytest.approx(a, abs=1e-9), name
    # The masked SSIM path is our own normalised convolution; all-True it is scikit-image's SSIM.
    assert M.ssim(noisy, amp, 0.4, mask=np.ones(amp.shape, bool)) == pytest.approx(M.ssim(noisy, amp, 0.4), abs=1e-9)


@pytest.mark.parametrize("component", ["amplitude", "phase"])
def test_unlit_pixels_never_enter_a_score(obj, component):
    truth = _components(obj)[component]
    mask = _gappy_mask(truth.shape)
    assert 0.3 < mask.mean() < 0.8
    noisy = truth + 0.03 * np.random.default_rng(6).standard_normal(truth.shape)
    wrapped = component == "phase"
    # Whatever fills the gaps (the truth, a constant, noise) leaves every score unchanged ...
    fills = [truth, np.full_like(truth, truth.mean()), np.random.default_rng(7).uniform(-3, 3, truth.shape),
             np.full_like(truth, np.nan)]
    scores = [M.score_pair(np.where(mask, noisy, fill), truth, wrapped=wrapped, mask=mask) for fill in fills]
    for other in scores[1:]:
        for name in M.METRIC_NAMES:
            assert getattr(other, name) == pytest.approx(getattr(scores[0], name), abs=1e-12), name
    # ... so an exact reconstruction of the lit pixels is perfect, seams and all, whatever the gaps hold;
    exact = M.score_pair(np.where(mask, truth, 0.0), truth, wrapped=wrapped, mask=mask)
    assert exact.ssim == pytest.approx(1.0, abs=1e-12) and exact.ms_ssim == pytest.approx(1.0, abs=1e-12)
    assert exact.frc50 is None and exact.mae == 0 and exact.pearson == pytest.approx(1.0, abs=1e-12)
    # unmasked, the seams between lit discs and a constant fill would have cost it a lot.
    assert M.score_pair(np.where(mask, truth, truth.mean()), truth, wrapped=wrapped).ssim < 0.9
    # And a flat image on the same pixels scores far lower than the exact one.
    flat = M.score_pair(np.full_like(truth, truth[mask].mean()), truth, wrapped=wrapped, mask=mask)
    assert flat.ssim < 0.8 and flat.pearson == 0.0 and flat.frc50 is not None


def test_masked_scores_still_fall_monotonically_with_noise(obj):
    amp = np.abs(obj)
    mask = _gappy_mask(amp.shape)
    noise = np.random.default_rng(8).standard_normal(amp.shape)
    scores = [M.score_pair(amp + sigma * noise, amp, mask=mask) for sigma in (0.003, 0.01, 0.03, 0.1, 0.3)]
    for worse, better in zip(scores[1:], scores[:-1], strict=True):
        assert worse.mae > better.mae and worse.psnr < better.psnr and worse.pearson < better.pearson
        assert worse.ssim < better.ssim and worse.ms_ssim < better.ms_ssim


def test_an_empty_mask_is_refused(obj):
    amp = np.abs(obj)
    with pytest.raises(ValueError, match="non-empty boolean image"):
        M.score_pair(amp, amp, mask=np.zeros(amp.shape, bool))
