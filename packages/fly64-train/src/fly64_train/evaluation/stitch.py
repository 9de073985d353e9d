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
chunks of patches so that memory stays bounded at any scan size. Only the
bounding box of the weight's non-zero pixels is placed (:func:`weighted_box`;
the rest would add zeros): with the default support, a quarter of each patch.
"""

from __future__ import annotations

import numpy as np

_CHUNK_PIXELS = 1 << 22  # ~4 M window pixels per scatter-add: a few hundred MB of temporaries at most


def _windows(values: np.ndarray, fy: np.ndarray, fx: np.ndarray, unit: int) -> np.ndarray:
    """Bilinear placement windows of ``values`` (B, h, w*unit) shifted by (fy, fx) in [0, 1): (B, h+1, (w+1)*unit).

    ``unit`` is 2 for complex data seen as interleaved float64 (a column step is two floats), else 1.
    Written as in-place multiply-adds: this is the whole cost of the stitch.
    """
    b, n, m = values.shape
    rows = np.empty((b, n + 1, m))
    np.multiply(values, (1 - fy)[:, None, None], out=rows[:, :n])
    rows[:, n] = 0
    rows[:, 1:] += values * fy[:, None, None]
    out = np.empty((b, n + 1, m + unit))
    np.multiply(rows, (1 - fx)[:, None, None], out=out[:, :, :m])
    out[:, :, m:] = 0
    out[:, :, unit:] += rows * fx[:, None, None]
    return out


def weighted_box(weight: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    """Half-open ``(row0, row1), (col0, col1)`` of the non-zero pixels of ``weight`` (all of it if none)."""
    rows, cols = np.flatnonzero(np.any(weight != 0, axis=1)), np.flatnonzero(np.any(weight != 0, axis=0))
    if rows.size == 0:
        return (0, weight.shape[0]), (0, weight.shape[1])
    return (int(rows[0]), int(rows[-1]) + 1), (int(cols[0]), int(cols[-1]) + 1)


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
    (r_lo, r_hi), (c_lo, c_hi) = weighted_box(weight)
    # Only the weighted rows and columns contribute (the default weight is the probe on the central
    # N/2 support: a quarter of the pixels); pixel (i, j) of the box is patch pixel (r_lo + i, c_lo + j).
    patches, weight = patches[:, r_lo:r_hi, c_lo:c_hi], weight[r_lo:r_hi, c_lo:c_hi]
    h, w = weight.shape
    oy = np.asarray(ycoords, np.float64) - n / 2 + r_lo
    ox = np.asarray(xcoords, np.float64) - n / 2 + c_lo
    r0, c0 = np.floor(oy).astype(np.int64), np.floor(ox).astype(np.int64)
    fy, fx = oy - r0, ox - c0
    # Accumulate on a frame padded so that every window lies inside it (no per-pixel clipping
    # masks); the padding is cropped away at the end, which drops what falls outside ``shape``.
    top, left = max(0, -int(r0.min(initial=0))), max(0, -int(c0.min(initial=0)))
    hp = max(shape[0], int(r0.max(initial=0)) + h + 1) + top
    wp = max(shape[1], int(c0.max(initial=0)) + w + 1) + left
    r0, c0 = r0 + top, c0 + left
    weight = weight.astype(np.float64)
    row_steps, col_steps = np.arange(h + 1), np.arange(w + 1)
    num = np.zeros(2 * hp * wp)  # interleaved real, imag: one bincount for both
    den = np.zeros(hp * wp)
    chunk = max(1, _CHUNK_PIXELS // ((h + 1) * (w + 1)))
    for start in range(0, len(patches), chunk):
        sl = slice(start, start + chunk)
        flat = ((r0[sl, None] + row_steps)[:, :, None] * wp + (c0[sl, None] + col_steps)[:, None, :]).ravel()
        values = (patches[sl] * weight).astype(np.complex128).view(np.float64)  # (B, h, 2w)
        num += np.bincount(np.stack([2 * flat, 2 * flat + 1], axis=1).ravel(),
                           _windows(values, fy[sl], fx[sl], 2).ravel(), 2 * hp * wp)
        den += np.bincount(flat, _windows(np.broadcast_to(weight, (len(flat) // ((h + 1) * (w + 1)), h, w)),
                                          fy[sl], fx[sl], 1).ravel(), hp * wp)
    crop = (slice(top, top + shape[0]), slice(left, left + shape[1]))
    num_img = num.view(np.complex128).reshape(hp, wp)[crop]
    den = den.reshape(hp, wp)[crop]
    img = np.where(den > 1e-3 * den.max(), num_img / np.maximum(den, 1e-12), 0)
    return img, den
