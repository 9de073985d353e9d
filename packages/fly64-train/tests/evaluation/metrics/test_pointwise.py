"""Pointwise metrics: PSNR against the truth's data range."""

from __future__ import annotations

import numpy as np
import pytest

from fly64_train.evaluation import metrics as M


def test_psnr_uses_the_data_range_not_255(obj):
    amp = np.abs(obj)
    noisy = amp + 0.01
    assert M.psnr(noisy, amp, 1.0) == pytest.approx(40.0, abs=1e-6)
    assert M.psnr(noisy, amp, 0.1) == pytest.approx(20.0, abs=1e-6)
