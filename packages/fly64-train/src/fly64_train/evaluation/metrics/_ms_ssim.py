"""Multi-scale SSIM (Wang, Simoncelli & Bovik 2003), masked like the single-scale one."""

from __future__ import annotations

import numpy as np

from fly64_train.evaluation.metrics._checks import check_pair
from fly64_train.evaluation.metrics._ssim import ssim_components, window_size

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim(x: np.ndarray, y: np.ndarray, data_range: float, *, sigma: float = 1.0,
            weights: tuple[float, ...] = MS_SSIM_WEIGHTS, mask: np.ndarray | None = None) -> float:
    """Multi-scale SSIM (Wang et al. 2003) with a Gaussian window of ``sigma``.

    Scales that would be smaller than two windows are dropped (a crop of a
    few hundred pixels supports all five at sigma 1; a tiny test image fewer)
    and the kept exponents renormalised, so the result stays in [0, 1].
    With ``mask``, each scale is scored on mask-weighted pixels (see the package
    docstring) and the images are down-sampled as mask-weighted means, so
    unmasked pixels never leak into a coarser scale.
    """
    check_pair(x, y, mask, "ms_ssim")
    x, y = x.astype(np.float64), y.astype(np.float64)
    w = None if mask is None else np.asarray(mask, dtype=np.float64)
    win = window_size(sigma)
    scales = 0
    h, wd = x.shape
    while scales < len(weights) and min(h, wd) >= 2 * win:
        scales += 1
        h, wd = h // 2, wd // 2
    if scales == 0:
        raise ValueError(f"image {x.shape} is too small for MS-SSIM with sigma {sigma} (window {win}); "
                         f"it needs at least {2 * win} x {2 * win} pixels")
    used = np.asarray(weights[:scales], dtype=np.float64)
    used = used / used.sum()
    value = 1.0
    for level in range(scales):
        lum, cs, _ = ssim_components(x, y, data_range, sigma=sigma, weight=w)
        value *= max(cs, 0.0) ** used[level]
        if level == scales - 1:
            # Luminance enters only at the coarsest scale (Wang et al. 2003, eq. 7).
            value *= max(lum, 0.0) ** used[level]
        else:
            x, y, w = _half_weighted(x, y, w)
    return float(value)


def _half_weighted(x: np.ndarray, y: np.ndarray,
                   w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One MS-SSIM down-sampling: 2x2 means, mask-weighted when there are weights (unscored pixels drop out)."""
    if w is None:
        return _half(x), _half(y), None
    coarse = _half(w)
    safe = np.where(coarse > 0, coarse, 1.0)
    x, y = (_half(w * np.where(w > 0, a, 0.0)) / safe for a in (x, y))
    return x, y, coarse


def _half(a: np.ndarray) -> np.ndarray:
    """2x2 mean down-sampling (odd trailing row/column dropped)."""
    h, w = (a.shape[0] // 2) * 2, (a.shape[1] // 2) * 2
    a = a[:h, :w]
    return 0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2])
