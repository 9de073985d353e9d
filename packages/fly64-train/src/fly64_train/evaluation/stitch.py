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

from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class StitchLayout:
    """Where every patch's weighted box lands: the geometry both stitches (numpy, torch) share."""

    box: tuple[slice, slice]
    """Rows and columns of a patch that carry weight (:func:`weighted_box`); the rest would add zeros."""
    r0: np.ndarray
    """(P,) int64, first row of each patch's (h+1)-tall window in the padded frame."""
    c0: np.ndarray
    """(P,) int64, first column of each window in the padded frame."""
    fy: np.ndarray
    """(P,) float64 in [0, 1), the sub-pixel part of each window's row origin."""
    fx: np.ndarray
    """(P,) float64 in [0, 1), the sub-pixel part of each window's column origin."""
    padded_shape: tuple[int, int]
    """The frame padded so that every window lies inside it (no per-pixel clipping masks)."""
    crop: tuple[slice, slice]
    """The object frame inside the padded one (what falls outside ``shape`` is dropped)."""

    @property
    def window_shape(self) -> tuple[int, int]:
        """(h+1, w+1): one patch's weighted box spread over the pixels its sub-pixel shift reaches."""
        return self.box[0].stop - self.box[0].start + 1, self.box[1].stop - self.box[1].start + 1


def window_indices(r0: Any, c0: Any, row_steps: Any, col_steps: Any, frame_width: int) -> Any:
    """(B, h+1, w+1) flat indices into the padded frame of windows starting at rows ``r0``, columns ``c0``.

    Plain broadcasting arithmetic, so numpy arrays or torch tensors (on any device) alike;
    ``row_steps``/``col_steps`` are ``arange(h+1)``/``arange(w+1)`` of the same kind.
    """
    return (r0[:, None] + row_steps)[:, :, None] * frame_width + (c0[:, None] + col_steps)[:, None, :]


def stitch_layout(patch_size: int, ycoords: np.ndarray, xcoords: np.ndarray, shape: tuple[int, int],
                  weight: np.ndarray) -> StitchLayout:
    """The :class:`StitchLayout` of patches of side ``patch_size`` centred at the scan positions.

    Pixel (i, j) of the weighted box is patch pixel (row0 + i, col0 + j), at object coordinate
    ``y - N/2 + row0 + i``: its window starts at the floor of that origin, shifted by the fraction.
    """
    (r_lo, r_hi), (c_lo, c_hi) = weighted_box(weight)
    n = patch_size
    oy = np.asarray(ycoords, np.float64) - n / 2 + r_lo
    ox = np.asarray(xcoords, np.float64) - n / 2 + c_lo
    r0, c0 = np.floor(oy).astype(np.int64), np.floor(ox).astype(np.int64)
    top, left = max(0, -int(r0.min(initial=0))), max(0, -int(c0.min(initial=0)))
    hp = max(shape[0], int(r0.max(initial=0)) + (r_hi - r_lo) + 1) + top
    wp = max(shape[1], int(c0.max(initial=0)) + (c_hi - c_lo) + 1) + left
    return StitchLayout(box=(slice(r_lo, r_hi), slice(c_lo, c_hi)), r0=r0 + top, c0=c0 + left,
                        fy=oy - r0, fx=ox - c0, padded_shape=(hp, wp),
                        crop=(slice(top, top + shape[0]), slice(left, left + shape[1])))


def check_patches(patches: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``patches`` as an array, refused unless (P, N, N) with N x N the weight's shape."""
    patches = np.asarray(patches)
    if patches.ndim != 3 or patches.shape[1:] != weight.shape:
        raise ValueError(f"patches must be (P, N, N) with N x N matching the weight {weight.shape}, "
                         f"got {patches.shape}")
    return patches


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
    patches = check_patches(patches, weight)
    layout = stitch_layout(patches.shape[-1], ycoords, xcoords, shape, weight)
    patches, weight = patches[(slice(None), *layout.box)], weight[layout.box].astype(np.float64)
    hp, wp = layout.padded_shape
    num = np.zeros(2 * hp * wp)  # interleaved real, imag: one bincount for both
    den = np.zeros(hp * wp)
    row_steps, col_steps = (np.arange(k) for k in layout.window_shape)
    chunk = max(1, _CHUNK_PIXELS // (layout.window_shape[0] * layout.window_shape[1]))
    for start in range(0, len(patches), chunk):
        sl = slice(start, start + chunk)
        flat = window_indices(layout.r0[sl], layout.c0[sl], row_steps, col_steps, wp).ravel()
        values = (patches[sl] * weight).astype(np.complex128).view(np.float64)  # (B, h, 2w)
        fy, fx = layout.fy[sl], layout.fx[sl]
        num += np.bincount(np.stack([2 * flat, 2 * flat + 1], axis=1).ravel(),
                           _windows(values, fy, fx, 2).ravel(), 2 * hp * wp)
        den += np.bincount(flat, _windows(np.broadcast_to(weight, (len(values), *weight.shape)), fy, fx, 1).ravel(),
                           hp * wp)
    num_img = num.view(np.complex128).reshape(hp, wp)[layout.crop]
    den = den.reshape(hp, wp)[layout.crop]
    img = np.where(den > 1e-3 * den.max(), num_img / np.maximum(den, 1e-12), 0)
    return img, den
