"""Single-scale SSIM equals scikit-image's."""

from __future__ import annotations

import numpy as np
import pytest

from fly64_train.evaluation import metrics as M


def test_single_scale_ssim_components_match_scikit_image(obj):
    amp = np.abs(obj)
    rng = np.random.default_rng(0)
    noisy = amp + 0.05 * rng.standard_normal(amp.shape)
    for sigma in (1.0, 1.5):
        _, _, mean_ssim = M.ssim_components(noisy, amp, 0.4, sigma=sigma)
        assert mean_ssim == pytest.approx(M.ssim(noisy, amp, 0.4, sigma=sigma), abs=1e-12)
