"""MS-SSIM keeps the scales that fit."""

from __future__ import annotations

import numpy as np
import pytest

from fly64_train.evaluation import metrics as M


def test_ms_ssim_uses_the_scales_that_fit_and_refuses_tiny_images(obj):
    amp = np.abs(obj)
    small, tiny = amp[:40, :40], amp[:12, :12]
    noisy = small + 0.02 * np.random.default_rng(1).standard_normal(small.shape)
    value = M.ms_ssim(noisy, small, 0.4, sigma=1.0)
    assert 0 < value < 1
    with pytest.raises(ValueError, match="too small for MS-SSIM"):
        M.ms_ssim(tiny, tiny, 0.4, sigma=1.0)
