"""Fourier ring correlation and its threshold crossings (cycles per pixel)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fly64_train.evaluation.metrics._checks import check_pair

FRC_THRESHOLDS = {"frc50": 0.5, "frc_1_7": 1.0 / 7.0}


@dataclass
class FRC:
    """A Fourier ring correlation curve."""

    frequency: np.ndarray
    """(R,) ring centres in cycles/pixel (0 .. 0.5)."""
    curve: np.ndarray
    """(R,) correlation per ring (ring 0, the DC ring, is excluded)."""
    counts: np.ndarray
    """(R,) Fourier pixels per ring."""
    crossings: dict[str, float | None] = field(default_factory=dict)
    """Named threshold -> first crossing (see :data:`FRC_THRESHOLDS`)."""

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


def frc(x: np.ndarray, y: np.ndarray, *, mask: np.ndarray | None = None) -> FRC:
    """Fourier ring correlation of two same-shape real images (see the package docstring)."""
    check_pair(x, y, mask, "frc")
    h, w = x.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    # Real images: the half-plane rfft2 holds every ring's information; each column but the
    # first (and, for even w, the last) stands for itself and its mirror, so it counts twice.
    f1 = np.fft.rfft2(_masked_zero_mean(x, mask) * window)
    f2 = np.fft.rfft2(_masked_zero_mean(y, mask) * window)
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.rfftfreq(w), indexing="ij"))
    mult = np.full(f1.shape[1], 2.0)
    mult[0] = 1.0
    if w % 2 == 0:
        mult[-1] = 1.0
    width = 1.0 / min(h, w)
    ring = np.floor(radius / width + 0.5).astype(np.int64)  # ring k is centred on k * width
    n_rings = int(np.floor(0.5 / width)) + 1
    keep = ring < n_rings
    ring = ring[keep]
    weight = np.broadcast_to(mult, f1.shape)[keep]
    cross = np.bincount(ring, ((f1 * np.conj(f2)).real * mult)[keep], n_rings)
    p1 = np.bincount(ring, ((f1.real**2 + f1.imag**2) * mult)[keep], n_rings)
    p2 = np.bincount(ring, ((f2.real**2 + f2.imag**2) * mult)[keep], n_rings)
    counts = np.rint(np.bincount(ring, weight, n_rings)).astype(np.int64)
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
