"""Single-scale SSIM (Wang et al. 2004), scikit-image's definition, and its masked (normalised-convolution) form."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.metrics import structural_similarity

from fly64_train.evaluation.metrics._checks import check_pair

SSIM_SIGMA = 1.5
GAUSSIAN_TRUNCATE = 3.5  # as scikit-image, so our single-scale SSIM equals theirs
K1, K2 = 0.01, 0.03


def ssim(x: np.ndarray, y: np.ndarray, data_range: float, *, sigma: float = SSIM_SIGMA,
         mask: np.ndarray | None = None) -> float:
    """Mean SSIM (Gaussian window, population covariance): scikit-image's, or its masked form."""
    check_pair(x, y, mask, "ssim")
    if mask is None:
        return float(structural_similarity(x.astype(np.float64), y.astype(np.float64), data_range=data_range,
                                           gaussian_weights=True, sigma=sigma, use_sample_covariance=False))
    return ssim_components(x, y, data_range, sigma=sigma, weight=mask)[2]


def window_size(sigma: float) -> int:
    """Side of the Gaussian window scikit-image (and we) use for ``sigma``."""
    return 2 * int(GAUSSIAN_TRUNCATE * sigma + 0.5) + 1


def ssim_components(x: np.ndarray, y: np.ndarray, data_range: float, *, sigma: float,
                    weight: np.ndarray | None = None) -> tuple[float, float, float]:
    """Mean luminance term, mean contrast-structure term and mean SSIM at one scale.

    Same filter, constants and border crop as scikit-image, so without
    ``weight`` ``mean(l * cs)`` here equals :func:`ssim` (a test pins this).
    MS-SSIM needs ``cs`` on its own, which scikit-image does not expose.

    ``weight`` (bool mask or fractional weights in [0, 1]) restricts every local
    statistic to weighted neighbours (normalised convolution) and averages the
    maps with the same weights, so zero-weight pixels never enter.
    """
    check_pair(x, y, weight, "ssim_components")
    x, y = x.astype(np.float64), y.astype(np.float64)

    def blur(a: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(a, sigma, mode="reflect", truncate=GAUSSIAN_TRUNCATE)

    if weight is None:
        w = None
        local = blur
    else:
        w = np.asarray(weight, dtype=np.float64)
        norm = blur(w)
        safe = np.where(norm > 1e-12, norm, 1.0)
        # np.where, not w * a alone: a NaN or inf in an unscored pixel must not reach any statistic.
        x, y = (np.where(w > 0, a, 0.0) for a in (x, y))

        def local(a: np.ndarray) -> np.ndarray:
            return blur(w * a) / safe

    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    mx, my = local(x), local(y)
    vx, vy, vxy = local(x * x) - mx * mx, local(y * y) - my * my, local(x * y) - mx * my
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    cs = (2 * vxy + c2) / (vx + vy + c2)
    pad = (window_size(sigma) - 1) // 2
    crop = (slice(pad, x.shape[0] - pad), slice(pad, x.shape[1] - pad))
    if w is None:
        return float(lum[crop].mean()), float(cs[crop].mean()), float((lum * cs)[crop].mean())
    wc = w[crop]
    total = float(wc.sum())
    if total <= 0:
        raise ValueError("no scored pixel lies inside the SSIM border crop")

    def average(a: np.ndarray) -> float:
        return float((a[crop] * wc).sum() / total)

    return average(lum), average(cs), average(lum * cs)
