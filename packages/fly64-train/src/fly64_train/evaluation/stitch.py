"""Stitch predicted patches in the object frame: one weighted scatter-add over every patch.

Each patch is placed with the probe intensity ``|P|^2`` (times the model's
support) as weight, using the shared bilinear convention: a patch centred at
``(y, x)`` covers object pixels ``y - N/2 + i``. A patch whose origin
``oy = y - N/2`` has integer part ``r0`` and fraction ``fy`` lands on the
(N+1)-wide window starting at ``r0``; window row ``i`` is the tent-kernel
sample of the patch at ``i - fy`` (the :func:`fly64_data.physics.resample`
convention), i.e. ``(1 - fy) p[i] + fy p[i - 1]`` with zeros beyond the patch.
All windows are formed at once and summed into the frame with ``np.bincount``
over their flat object indices (pixels outside the frame are dropped), in
chunks of patches so that memory stays bounded at any scan size.
"""

from __future__ import annotations

import numpy as np

_CHUNK_PIXELS = 1 << 22  # ~4 M window pixels per scatter-add: ~200 MB of float64 temporaries at most


def _windows(values: np.ndarray, fy: np.ndarray, fx: np.ndarray) -> np.ndarray:
    """(B, N+1, N+1) bilinear placement windows of ``values`` (B, N, N) shifted by (fy, fx) in [0, 1)."""
    b, n, _ = values.shape
    padded = np.zeros((b, n + 2, n + 2), values.dtype)
    padded[:, 1:-1, 1:-1] = values
    fy, fx = fy[:, None, None], fx[:, None, None]
    rows = (1 - fy) * padded[:, 1:, :] + fy * padded[:, :-1, :]  # (B, N+1, N+2)
    return (1 - fx) * rows[:, :, 1:] + fx * rows[:, :, :-1]  # (B, N+1, N+1)


def stitch(patches: np.ndarray, ycoords: np.ndarray, xcoords: np.ndarray, shape: tuple[int, int],
           weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted average of patches in an object frame of ``shape``; returns (image, summed weight).

    Parameters
    ----------
    patches : (P, N, N) complex
    ycoords, xcoords : (P,) float
        Patch centres in object pixels.
    shape : (H, W)
    weight : (N, N) float
        Per-pixel weight of every patch (probe intensity on the support).
    """
    patches = np.asarray(patches)
    if patches.ndim != 3 or patches.shape[1:] != weight.shape:
        raise ValueError(f"patches must be (P, N, N) with N x N matching the weight {weight.shape}, "
                         f"got {patches.shape}")
    n = patches.shape[-1]
    h, w = shape
    oy = np.asarray(ycoords, np.float64) - n / 2
    ox = np.asarray(xcoords, np.float64) - n / 2
    r0, c0 = np.floor(oy).astype(np.int64), np.floor(ox).astype(np.int64)
    fy, fx = oy - r0, ox - c0
    weight = weight.astype(np.float64)
    steps = np.arange(n + 1)
    num_re = np.zeros(h * w)
    num_im = np.zeros(h * w)
    den = np.zeros(h * w)
    chunk = max(1, _CHUNK_PIXELS // (n + 1) ** 2)
    for start in range(0, len(patches), chunk):
        sl = slice(start, start + chunk)
        rows = r0[sl, None] + steps  # (B, N+1)
        cols = c0[sl, None] + steps
        inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
        flat = (rows[:, :, None] * w + cols[:, None, :])[inside]
        values = _windows(patches[sl].astype(np.complex128) * weight, fy[sl], fx[sl])[inside]
        weights = _windows(np.broadcast_to(weight, (len(rows), n, n)), fy[sl], fx[sl])[inside]
        num_re += np.bincount(flat, values.real, h * w)
        num_im += np.bincount(flat, values.imag, h * w)
        den += np.bincount(flat, weights, h * w)
    num = (num_re + 1j * num_im).reshape(shape)
    den = den.reshape(shape)
    img = np.where(den > 1e-3 * den.max(), num / np.maximum(den, 1e-12), 0)
    return img, den
