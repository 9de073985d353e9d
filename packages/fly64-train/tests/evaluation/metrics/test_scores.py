"""The whole metric set on known images: the fly64 synthetic object itself, shifted, noisier, masked."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fly64_train.evaluation import metrics as M

SIZE = 160


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


@pytest.mark.parametrize("call", [
    lambda a, b: M.score_pair(a, b), lambda a, b: M.mae(a, b), lambda a, b: M.psnr(a, b, 1.0),
    lambda a, b: M.pearson(a, b), lambda a, b: M.ssim(a, b, 1.0), lambda a, b: M.ms_ssim(a, b, 1.0),
    lambda a, b: M.frc(a, b), lambda a, b: M.align_amplitude(a, b), lambda a, b: M.align_phase(a, b)])
def test_images_of_two_shapes_or_a_stack_are_refused_saying_what_to_pass(obj, call):
    amp = np.abs(obj)
    with pytest.raises(ValueError, match=r"two 2-D images of one shape, got \(160, 160\) and \(160, 150\)"):
        call(amp, amp[:, :150])
    with pytest.raises(ValueError, match="score amplitude and phase separately"):
        call(np.stack([amp, amp]), np.stack([amp, amp]))


def test_tuning_arguments_are_keyword_only(obj):
    amp = np.abs(obj)
    with pytest.raises(TypeError):
        M.score_pair(amp, amp, 1.0)  # ms_ssim_sigma must be named
    with pytest.raises(TypeError):
        M.ssim(amp, amp, 1.0, 1.5)  # sigma must be named
