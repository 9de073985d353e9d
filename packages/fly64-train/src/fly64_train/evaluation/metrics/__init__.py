"""Image-quality metrics for reconstructions against ground truth (SPEC §8).

Everything here is numpy + scikit-image and works on 2-D float images. One
concept per private module, as in scikit-image's metrics package: ``_alignment``
(:func:`align_amplitude`, :func:`align_phase`), ``_pointwise`` (MAE, PSNR,
Pearson), ``_ssim``, ``_ms_ssim``, ``_frc`` and ``_scores`` (:func:`score_pair`
runs the whole set on one component); the held-out information score in
``_count_split`` (:func:`split_counts`), ``_likelihood`` (:func:`poisson_nll`)
and ``_information`` (:func:`information_score`), see docs/evaluation.md. Tuning arguments are keyword-only; every
function refuses images that are not two 2-D arrays of one shape, saying so.

Definitions (``x`` the reconstruction, ``y`` the ground truth, ``R`` the
*data range* of the ground truth, ``max(y) - min(y)``, never 255). Every metric
takes an optional boolean ``mask`` of the pixels to score (the pixels the scan
lit); pixels outside it never enter any value, so whatever fills them cannot
change a score (see "Masked scoring" below):

MAE
    ``mean |x - y|`` (phase: of the wrapped difference, radians).
PSNR
    ``10 log10(R^2 / mean (x - y)^2)`` in dB (scikit-image); ``inf`` when equal.
SSIM
    Wang et al. (2004) with a Gaussian window, sigma ``SSIM_SIGMA`` = 1.5,
    population covariances, K1 = 0.01, K2 = 0.03 (scikit-image).
MS-SSIM
    Wang, Simoncelli & Bovik (2003): contrast-structure at every scale, luminance
    at the coarsest, the five standard exponents, 2x2 mean down-sampling
    between scales, Gaussian window with the design's ``ms_ssim_sigma``. Scales
    whose image is smaller than the window are dropped and the remaining
    exponents renormalised to sum to 1; negative factors are clipped to 0
    before the fractional powers (a common convention; it avoids NaN).
FRC
    Fourier ring correlation ``Re sum F1 F2* / sqrt(sum|F1|^2 sum|F2|^2)`` per
    ring of width ``1 / min(H, W)`` cycles/pixel, after removing each image's
    mean and applying a 2-D Hann window (edges of a crop would otherwise
    correlate trivially). Crossings are in **cycles per pixel** (Nyquist =
    0.5), linearly interpolated, and ``None`` when the curve never falls below
    the threshold before Nyquist.
Pearson
    Correlation coefficient of the pixel values.

Masked scoring
    Pointwise metrics (MAE, PSNR, Pearson) use the masked pixels only. SSIM's
    local means, variances and covariance are Gaussian-weighted averages over
    masked neighbours only (normalised convolution: ``G*(m a) / G*m``), and the
    SSIM map is averaged over masked pixels, so a window that straddles a gap
    compares only real pixels. MS-SSIM does the same at every scale, with the
    images down-sampled as mask-weighted means and the mask as fractional
    weights. FRC removes each image's masked mean and zeroes both images
    outside the mask before the Hann window, so both see the same aperture.
    With no mask (or an all-True one) every value equals the unmasked
    definition above (scikit-image's SSIM to rounding).
"""

from fly64_train.evaluation.metrics._alignment import PhaseAlignment, align_amplitude, align_phase, wrap
from fly64_train.evaluation.metrics._count_split import COUNT_SPLIT_FRACTION, COUNT_SPLIT_SEED, split_counts
from fly64_train.evaluation.metrics._frc import FRC, FRC_THRESHOLDS, frc
from fly64_train.evaluation.metrics._information import InformationScore, information_score
from fly64_train.evaluation.metrics._likelihood import RATE_FLOOR, poisson_nll
from fly64_train.evaluation.metrics._ms_ssim import MS_SSIM_WEIGHTS, ms_ssim
from fly64_train.evaluation.metrics._pointwise import data_range_of, mae, pearson, psnr
from fly64_train.evaluation.metrics._scores import METRIC_NAMES, ComponentScores, score_pair
from fly64_train.evaluation.metrics._ssim import (
    GAUSSIAN_TRUNCATE,
    K1,
    K2,
    SSIM_SIGMA,
    ssim,
    ssim_components,
    window_size,
)

__all__ = [
    "COUNT_SPLIT_FRACTION", "COUNT_SPLIT_SEED", "InformationScore", "RATE_FLOOR", "information_score",
    "poisson_nll", "split_counts",
    "FRC", "FRC_THRESHOLDS", "GAUSSIAN_TRUNCATE", "K1", "K2", "METRIC_NAMES", "MS_SSIM_WEIGHTS", "SSIM_SIGMA",
    "ComponentScores", "PhaseAlignment", "align_amplitude", "align_phase", "data_range_of", "frc", "mae",
    "ms_ssim", "pearson", "psnr", "score_pair", "ssim", "ssim_components", "window_size", "wrap",
]
