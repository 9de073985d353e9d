"""Image-quality metrics for reconstructions against ground truth (SPEC §8).

Everything here is numpy + scikit-image and works on 2-D float images; the
complex-object steps (amplitude scale, phase offset and ramp) are in
:func:`align_amplitude` and :func:`align_phase`, and :func:`score_pair` runs the
whole set on one component.

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

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

SSIM_SIGMA = 1.5
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
GAUSSIAN_TRUNCATE = 3.5  # as scikit-image, so our single-scale SSIM equals theirs
K1, K2 = 0.01, 0.03
FRC_THRESHOLDS = {"frc50": 0.5, "frc_1_7": 1.0 / 7.0}
METRIC_NAMES = ("mae", "psnr", "ssim", "ms_ssim", "frc50", "frc_1_7", "pearson")


# --------------------------------------------------------------------------- alignment


def align_amplitude(amp: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Remove the global scale of ``amp`` against ``ref``: least-squares ``s`` minimising ``|s a - r|^2``.

    Parameters
    ----------
    amp, ref : 2-D float arrays
    mask : bool array, optional
        Pixels the fit uses (default: all).

    Returns
    -------
    (scaled amplitude, s)
        ``s`` is 1 when ``amp`` is zero on the mask (nothing to scale).
    """
    m = np.ones(amp.shape, bool) if mask is None else mask
    a, r = amp[m].astype(np.float64), ref[m].astype(np.float64)
    denom = float((a * a).sum())
    scale = float((a * r).sum() / denom) if denom > 0 else 1.0
    return amp.astype(np.float64) * scale, scale


@dataclass
class PhaseAlignment:
    """The phase model removed from a reconstruction: ``offset + gy * row + gx * col`` (radians)."""

    offset: float
    gy: float
    gx: float

    def plane(self, shape: tuple[int, int]) -> np.ndarray:
        rows, cols = np.mgrid[: shape[0], : shape[1]]
        return self.offset + self.gy * rows + self.gx * cols


def wrap(phase: np.ndarray) -> np.ndarray:
    """Wrap to (-pi, pi]."""
    return np.angle(np.exp(1j * phase))


def align_phase(phase: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None,
                iterations: int = 3) -> tuple[np.ndarray, PhaseAlignment]:
    """Remove a global phase offset and linear ramp from ``phase`` against ``ref``.

    The residual ``d = wrap(ref - phase)`` is modelled as ``c + gy*row + gx*col``.
    A steep ramp wraps ``d`` many times, which defeats a direct least-squares
    fit, so the ramp is first located coarsely as the peak of the (zero-padded)
    Fourier transform of ``exp(i d)``; then the plane is refined by least
    squares on the *wrapped* remaining residual, which is small by then.

    Returns
    -------
    (aligned, alignment)
        ``aligned = ref - wrap(ref - phase - plane)``: the reconstruction's phase
        expressed on the ground truth's branch, so that ``aligned - ref`` is the
        wrapped error and the two can be compared as real images.
    """
    m = np.ones(phase.shape, bool) if mask is None else mask
    resid = wrap(ref.astype(np.float64) - phase.astype(np.float64))
    rows, cols = np.mgrid[: phase.shape[0], : phase.shape[1]]
    gy, gx = _coarse_ramp(np.where(m, np.exp(1j * resid), 0))
    plane = PhaseAlignment(0.0, gy, gx)
    design = np.column_stack([np.ones(int(m.sum())), rows[m], cols[m]]).astype(np.float64)
    for _ in range(iterations):
        left = wrap(resid - plane.plane(phase.shape))
        # Start each refinement from the circular mean so the offset never sits near a wrap.
        left_offset = float(np.angle(np.exp(1j * left[m]).sum()))
        coef, *_ = np.linalg.lstsq(design, wrap(left[m] - left_offset), rcond=None)
        plane = PhaseAlignment(plane.offset + left_offset + coef[0], plane.gy + coef[1], plane.gx + coef[2])
    plane.offset = float(wrap(np.asarray(plane.offset)))
    aligned = ref - wrap(resid - plane.plane(phase.shape))
    return aligned, plane


def _coarse_ramp(field_: np.ndarray, pad: int = 4) -> tuple[float, float]:
    """Phase gradient (rad/pixel) of the dominant plane wave in ``field_``."""
    h, w = field_.shape
    spec = np.abs(np.fft.fft2(field_, s=(pad * h, pad * w)))
    ky, kx = np.unravel_index(int(np.argmax(spec)), spec.shape)
    fy = np.fft.fftfreq(pad * h)[ky]
    fx = np.fft.fftfreq(pad * w)[kx]
    return 2 * math.pi * float(fy), 2 * math.pi * float(fx)


# --------------------------------------------------------------------------- pointwise


def _select(a: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The scored pixels of ``a`` as float64 (all of them without a mask)."""
    a = np.asarray(a, dtype=np.float64)
    return a if mask is None else a[mask]


def mae(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> float:
    return float(np.abs(_select(x, mask) - _select(y, mask)).mean())


def psnr(x: np.ndarray, y: np.ndarray, data_range: float, mask: np.ndarray | None = None) -> float:
    """PSNR in dB with an explicit data range (``inf`` for identical images)."""
    x, y = _select(x, mask), _select(y, mask)
    if np.array_equal(x, y):
        return math.inf
    return float(peak_signal_noise_ratio(y, x, data_range=data_range))


def pearson(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Pearson correlation; 0 when either image is constant (no linear relation to speak of)."""
    a, b = _select(x, mask).ravel(), _select(y, mask).ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0  # (a constant's mean is not always exactly representable: no rounding-noise "correlation")
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def data_range_of(ref: np.ndarray, mask: np.ndarray | None = None) -> float:
    """``max - min`` of the ground truth (on the mask), or 1 for a constant image (avoids a zero range)."""
    ref = _select(ref, mask)
    rng = float(np.max(ref) - np.min(ref))
    return rng if rng > 0 else 1.0


# --------------------------------------------------------------------------- SSIM family


def ssim(x: np.ndarray, y: np.ndarray, data_range: float, sigma: float = SSIM_SIGMA,
         mask: np.ndarray | None = None) -> float:
    """Mean SSIM (Gaussian window, population covariance): scikit-image's, or its masked form."""
    if mask is None:
        return float(structural_similarity(x.astype(np.float64), y.astype(np.float64), data_range=data_range,
                                           gaussian_weights=True, sigma=sigma, use_sample_covariance=False))
    return ssim_components(x, y, data_range, sigma, weight=mask)[2]


def window_size(sigma: float) -> int:
    """Side of the Gaussian window scikit-image (and we) use for ``sigma``."""
    return 2 * int(GAUSSIAN_TRUNCATE * sigma + 0.5) + 1


def ssim_components(x: np.ndarray, y: np.ndarray, data_range: float, sigma: float,
                    weight: np.ndarray | None = None) -> tuple[float, float, float]:
    """Mean luminance term, mean contrast-structure term and mean SSIM at one scale.

    Same filter, constants and border crop as scikit-image, so without
    ``weight`` ``mean(l * cs)`` here equals :func:`ssim` (a test pins this).
    MS-SSIM needs ``cs`` on its own, which scikit-image does not expose.

    ``weight`` (bool mask or fractional weights in [0, 1]) restricts every local
    statistic to weighted neighbours (normalised convolution) and averages the
    maps with the same weights, so zero-weight pixels never enter.
    """
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

        def local(a: np.ndarray) -> np.ndarray:
            # np.where, not w * a alone: a NaN or inf in an unscored pixel must not reach any statistic.
            return blur(w * np.where(w > 0, a, 0.0)) / safe

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


def ms_ssim(x: np.ndarray, y: np.ndarray, data_range: float, sigma: float = 1.0,
            weights: tuple[float, ...] = MS_SSIM_WEIGHTS, mask: np.ndarray | None = None) -> float:
    """Multi-scale SSIM (Wang et al. 2003) with a Gaussian window of ``sigma``.

    Scales that would be smaller than two windows are dropped (a crop of a
    few hundred pixels supports all five at sigma 1; a tiny test image fewer)
    and the kept exponents renormalised, so the result stays in [0, 1].
    With ``mask``, each scale is scored on mask-weighted pixels (see the module
    docstring) and the images are down-sampled as mask-weighted means, so
    unmasked pixels never leak into a coarser scale.
    """
    x, y = x.astype(np.float64), y.astype(np.float64)
    w = None if mask is None else np.asarray(mask, dtype=np.float64)
    win = window_size(sigma)
    scales = 0
    h, wd = x.shape
    while scales < len(weights) and min(h, wd) >= 2 * win:
        scales += 1
        h, wd = h // 2, wd // 2
    if scales == 0:
        raise ValueError(f"image {x.shape} is too small for MS-SSIM with sigma {sigma} (window {win})")
    used = np.asarray(weights[:scales], dtype=np.float64)
    used = used / used.sum()
    value = 1.0
    for level in range(scales):
        lum, cs, _ = ssim_components(x, y, data_range, sigma, weight=w)
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


# --------------------------------------------------------------------------- FRC


@dataclass
class FRC:
    """A Fourier ring correlation curve.

    Attributes
    ----------
    frequency : (R,) float
        Ring centres in cycles/pixel (0 .. 0.5).
    curve : (R,) float
        Correlation per ring (ring 0, the DC ring, is excluded).
    counts : (R,) int
        Fourier pixels per ring.
    """

    frequency: np.ndarray
    curve: np.ndarray
    counts: np.ndarray
    crossings: dict[str, float | None] = field(default_factory=dict)

    def crossing(self, threshold: float) -> float | None:
        """First frequency (cycles/pixel) where the curve falls below ``threshold``; None if it never does."""
        below = np.flatnonzero(self.curve < threshold)
        if below.size == 0:
            return None
        k = int(below[0])
        if k == 0:
            return float(self.frequency[0])
        f0, f1 = self.frequency[k - 1], self.frequency[k]
        c0, c1 = self.curve[k - 1], self.curve[k]
        t = (c0 - threshold) / (c0 - c1) if c0 != c1 else 0.0
        return float(f0 + t * (f1 - f0))


def frc(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> FRC:
    """Fourier ring correlation of two same-shape real images (see the module docstring)."""
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"FRC needs two 2-D images of one shape, got {x.shape} and {y.shape}")
    h, w = x.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    f1 = np.fft.fft2(_masked_zero_mean(x, mask) * window)
    f2 = np.fft.fft2(_masked_zero_mean(y, mask) * window)
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij"))
    width = 1.0 / min(h, w)
    ring = np.floor(radius / width + 0.5).astype(np.int64)  # ring k is centred on k * width
    n_rings = int(np.floor(0.5 / width)) + 1
    keep = ring < n_rings
    ring = ring[keep]
    cross = np.bincount(ring, (f1 * np.conj(f2)).real[keep], n_rings)
    p1 = np.bincount(ring, (np.abs(f1) ** 2)[keep], n_rings)
    p2 = np.bincount(ring, (np.abs(f2) ** 2)[keep], n_rings)
    counts = np.bincount(ring, minlength=n_rings)
    denom = np.sqrt(p1 * p2)
    with np.errstate(invalid="ignore", divide="ignore"):
        curve = np.where(denom > 0, cross / np.where(denom > 0, denom, 1.0), 0.0)
    # An image compared with itself has denominators equal to the numerator; keep that exactly 1.
    curve = np.clip(curve, -1.0, 1.0)
    result = FRC(np.arange(1, n_rings) * width, curve[1:], counts[1:])
    result.crossings = {name: result.crossing(t) for name, t in FRC_THRESHOLDS.items()}
    return result


def _masked_zero_mean(a: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``a`` minus its (masked) mean, zero outside the mask."""
    a = a.astype(np.float64)
    if mask is None:
        return a - a.mean()
    return np.where(mask, a - a[mask].mean(), 0.0)


# --------------------------------------------------------------------------- one component


@dataclass
class ComponentScores:
    """The SPEC §8 metric set of one image component (amplitude or phase)."""

    mae: float
    psnr: float
    ssim: float
    ms_ssim: float
    frc50: float | None
    frc_1_7: float | None
    pearson: float
    frc_curve: FRC = field(repr=False, default=None)  # type: ignore[assignment]

    def as_json(self) -> dict[str, float | None]:
        """The metric set as JSON numbers; non-finite values (PSNR of identical images) become null."""
        out: dict[str, float | None] = {}
        for name in METRIC_NAMES:
            value = getattr(self, name)
            # "+ 0.0" turns a rounded -0.0 into 0.0 in the JSON.
            out[name] = None if value is None or not math.isfinite(value) else round(float(value), 6) + 0.0
        return out


def score_pair(x: np.ndarray, y: np.ndarray, ms_ssim_sigma: float = 1.0, data_range: float | None = None,
               wrapped: bool = False, mask: np.ndarray | None = None) -> ComponentScores:
    """Every metric of reconstruction ``x`` against ground truth ``y`` (already aligned).

    ``wrapped`` makes MAE use the wrapped difference (for phases). ``mask`` (bool,
    same shape) selects the scored pixels; the data range is then the truth's on
    the mask.
    """
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != x.shape or not mask.any():
            raise ValueError(f"mask must be a non-empty boolean image of shape {x.shape}")
    rng = data_range_of(y, mask) if data_range is None else data_range
    diff = wrap(x - y) if wrapped else x - y
    curve = frc(x, y, mask)
    return ComponentScores(
        mae=float(np.abs(_select(diff, mask)).mean()), psnr=psnr(x, y, rng, mask), ssim=ssim(x, y, rng, mask=mask),
        ms_ssim=ms_ssim(x, y, rng, ms_ssim_sigma, mask=mask), frc50=curve.crossings["frc50"],
        frc_1_7=curve.crossings["frc_1_7"], pearson=pearson(x, y, mask), frc_curve=curve,
    )
