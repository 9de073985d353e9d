"""Removing what a reconstruction cannot know: the amplitude's global scale, the phase's offset and ramp."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fly64_train.evaluation.metrics._checks import check_pair


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
    check_pair(amp, ref, mask, "align_amplitude")
    m = np.ones(amp.shape, bool) if mask is None else mask
    a, r = amp[m].astype(np.float64), ref[m].astype(np.float64)
    denom = float((a * a).sum())
    scale = float((a * r).sum() / denom) if denom > 0 else 1.0
    return amp.astype(np.float64) * scale, scale


@dataclass
class PhaseAlignment:
    """The phase model removed from a reconstruction: ``offset + gy * row + gx * col`` (radians)."""

    offset: float
    """Global phase offset, radians, wrapped to (-pi, pi]."""
    gy: float
    """Ramp along rows, radians per pixel."""
    gx: float
    """Ramp along columns, radians per pixel."""

    def plane(self, shape: tuple[int, int]) -> np.ndarray:
        rows, cols = np.mgrid[: shape[0], : shape[1]]
        return self.offset + self.gy * rows + self.gx * cols


def wrap(phase: np.ndarray) -> np.ndarray:
    """Wrap to (-pi, pi].

    Plain modular arithmetic: the same values as ``angle(exp(i phase))`` without a
    complex exponential and an arctangent per pixel (5x faster on a scored region).
    """
    return math.pi - np.mod(math.pi - np.asarray(phase, dtype=np.float64), 2 * math.pi)


def align_phase(phase: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None, *,
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
    check_pair(phase, ref, mask, "align_phase")
    m = np.ones(phase.shape, bool) if mask is None else mask
    resid = wrap(ref.astype(np.float64) - phase.astype(np.float64))
    rows, cols = np.mgrid[: phase.shape[0], : phase.shape[1]]
    gy, gx = _coarse_ramp(np.where(m, np.exp(1j * resid), 0))
    plane = PhaseAlignment(0.0, gy, gx)
    design = np.column_stack([np.ones(int(m.sum())), rows[m], cols[m]]).astype(np.float64)
    # Three unknowns: the normal equations (a 3 x 3 solve) give the least-squares plane at a fraction of
    # an SVD of the (pixels x 3) design; in float64 the 3 x 3 system is well conditioned for any region we score.
    gram = design.T @ design
    for _ in range(iterations):
        left = wrap(resid - plane.plane(phase.shape))
        # Start each refinement from the circular mean so the offset never sits near a wrap.
        left_offset = float(np.angle(np.exp(1j * left[m]).sum()))
        coef = np.linalg.solve(gram, design.T @ wrap(left[m] - left_offset))
        plane = PhaseAlignment(plane.offset + left_offset + coef[0], plane.gy + coef[1], plane.gx + coef[2])
    plane.offset = float(wrap(np.asarray(plane.offset)))
    aligned = ref - wrap(resid - plane.plane(phase.shape))
    return aligned, plane


def _coarse_ramp(field_: np.ndarray, pad: int = 4) -> tuple[float, float]:
    """Phase gradient (rad/pixel) of the dominant plane wave in ``field_``, to 1/``pad`` of a Fourier bin.

    The peak of the plain FFT picks the bin; the spectrum is then evaluated on a
    1/``pad``-bin grid over the bins around it by a small matrix DFT (as in
    Guizar-Sicairos' upsampled cross-correlation). That is the peak a ``pad``-times
    zero-padded FFT finds, at a fraction of its cost on a region of ~500 x 1000 pixels.
    """
    h, w = field_.shape
    ky, kx = np.unravel_index(int(np.argmax(np.abs(np.fft.fft2(field_)))), field_.shape)
    # Candidate frequencies (cycles/pixel): within one bin of the peak, in steps of 1/pad bin.
    offsets = np.arange(-pad, pad + 1) / pad
    fy = (np.fft.fftfreq(h)[ky] + offsets / h)
    fx = (np.fft.fftfreq(w)[kx] + offsets / w)
    ey = np.exp(-2j * math.pi * np.outer(fy, np.arange(h)))  # (K, h)
    ex = np.exp(-2j * math.pi * np.outer(np.arange(w), fx))  # (w, K)
    zoom = np.abs(ey @ field_ @ ex)
    iy, ix = np.unravel_index(int(np.argmax(zoom)), zoom.shape)
    wrap_freq = lambda f: (f + 0.5) % 1.0 - 0.5  # noqa: E731 - back into [-0.5, 0.5) cycles/pixel
    return 2 * math.pi * float(wrap_freq(fy[iy])), 2 * math.pi * float(wrap_freq(fx[ix]))
