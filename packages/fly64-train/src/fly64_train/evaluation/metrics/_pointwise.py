"""Pixel-by-pixel metrics: MAE, PSNR, Pearson correlation, and the data range PSNR and SSIM use."""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import peak_signal_noise_ratio

from fly64_train.evaluation.metrics._checks import check_pair, select


def mae(x: np.ndarray, y: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Mean absolute difference on the scored pixels."""
    check_pair(x, y, mask, "mae")
    return float(np.abs(select(x, mask) - select(y, mask)).mean())


def psnr(x: np.ndarray, y: np.ndarray, data_range: float, *, mask: np.ndarray | None = None) -> float:
    """PSNR in dB with an explicit data range (``inf`` for identical images)."""
    check_pair(x, y, mask, "psnr")
    x, y = select(x, mask), select(y, mask)
    if np.array_equal(x, y):
        return math.inf
    return float(peak_signal_noise_ratio(y, x, data_range=data_range))


def pearson(x: np.ndarray, y: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Pearson correlation; 0 when either image is constant (no linear relation to speak of)."""
    check_pair(x, y, mask, "pearson")
    a, b = select(x, mask).ravel(), select(y, mask).ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0  # (a constant's mean is not always exactly representable: no rounding-noise "correlation")
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def data_range_of(ref: np.ndarray, mask: np.ndarray | None = None) -> float:
    """``max - min`` of the ground truth (on the mask), or 1 for a constant image (avoids a zero range)."""
    ref = select(ref, mask)
    rng = float(np.max(ref) - np.min(ref))
    return rng if rng > 0 else 1.0
