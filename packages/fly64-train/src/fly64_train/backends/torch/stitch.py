"""The stitch of :mod:`fly64_train.evaluation.stitch`, run by torch on the model's device.

Same windows, same weights, same frame: each patch is spread bilinearly over
its (N+1) x (N+1) window of the object frame (the :func:`fly64_data.physics.resample`
tent kernel) and every window is summed into the frame with one ``index_add_``
per chunk of patches, numerator and denominator alike. Accumulation is in
float64 as in the numpy reference, which a test pins to 1e-6. On a GPU the patches
are scattered where the CNN produced them instead of in one host core's loop.
"""

from __future__ import annotations

import numpy as np
import torch

from fly64_train.evaluation.stitch import weighted_box

#: Window pixels per scatter-add (as the numpy reference): bounded temporaries at any scan size.
CHUNK_PIXELS = 1 << 22


def _spread(values: torch.Tensor, fy: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
    """Bilinear windows (B, h+1, w+1, ...) of ``values`` (B, h, w, ...) shifted by (fy, fx) in [0, 1).

    Window row ``i`` is ``(1 - fy) v[i] + fy v[i - 1]`` with zeros beyond the patch, likewise per column.
    """
    shape = (-1,) + (1,) * (values.dim() - 1)
    fy, fx = fy.reshape(shape), fx.reshape(shape)
    zero_row = values.new_zeros((values.shape[0], 1, *values.shape[2:]))
    rows = torch.cat([values, zero_row], 1) * (1 - fy) + torch.cat([zero_row, values], 1) * fy
    zero_col = rows.new_zeros((rows.shape[0], rows.shape[1], 1, *rows.shape[3:]))
    return torch.cat([rows, zero_col], 2) * (1 - fx) + torch.cat([zero_col, rows], 2) * fx


def stitch(patches: np.ndarray, ycoords: np.ndarray, xcoords: np.ndarray, shape: tuple[int, int],
           weight: np.ndarray, device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Weighted average of ``patches`` (P, N, N) in a frame of ``shape``; returns (image, summed weight).

    The arguments and results are those of :func:`fly64_train.evaluation.stitch.stitch`; only the
    arithmetic runs on ``device``.
    """
    patches = np.asarray(patches)
    if patches.ndim != 3 or patches.shape[1:] != weight.shape:
        raise ValueError(f"patches must be (P, N, N) with N x N matching the weight {weight.shape}, "
                         f"got {patches.shape}")
    device = torch.device(device)
    n = patches.shape[-1]
    (r_lo, r_hi), (c_lo, c_hi) = weighted_box(weight)  # the rest of each patch would add zeros
    patches, weight = patches[:, r_lo:r_hi, c_lo:c_hi], weight[r_lo:r_hi, c_lo:c_hi]
    h, w_ = weight.shape
    oy = np.asarray(ycoords, np.float64) - n / 2 + r_lo
    ox = np.asarray(xcoords, np.float64) - n / 2 + c_lo
    r0, c0 = np.floor(oy).astype(np.int64), np.floor(ox).astype(np.int64)
    # A frame padded so that every window lies inside it; the padding is cropped away at the end.
    top, left = max(0, -int(r0.min(initial=0))), max(0, -int(c0.min(initial=0)))
    hp = max(shape[0], int(r0.max(initial=0)) + h + 1) + top
    wp = max(shape[1], int(c0.max(initial=0)) + w_ + 1) + left
    fy = torch.from_numpy(oy - r0).to(device)
    fx = torch.from_numpy(ox - c0).to(device)
    r0 = torch.from_numpy(r0 + top).to(device)
    c0 = torch.from_numpy(c0 + left).to(device)
    w = torch.from_numpy(np.asarray(weight, np.float64)).to(device)
    row_steps, col_steps = torch.arange(h + 1, device=device), torch.arange(w_ + 1, device=device)
    num = torch.zeros((hp * wp, 2), dtype=torch.float64, device=device)  # real, imaginary
    den = torch.zeros(hp * wp, dtype=torch.float64, device=device)
    chunk = max(1, CHUNK_PIXELS // ((h + 1) * (w_ + 1)))
    for start in range(0, len(patches), chunk):
        sl = slice(start, start + chunk)
        p = torch.from_numpy(np.ascontiguousarray(patches[sl])).to(device)
        flat = ((r0[sl, None] + row_steps)[:, :, None] * wp + (c0[sl, None] + col_steps)[:, None, :]).reshape(-1)
        values = torch.view_as_real((p * w).to(torch.complex128))  # (B, h, w, 2)
        num.index_add_(0, flat, _spread(values, fy[sl], fx[sl]).reshape(-1, 2))
        den.index_add_(0, flat, _spread(w.expand(p.shape[0], h, w_), fy[sl], fx[sl]).reshape(-1))
    crop = (slice(top, top + shape[0]), slice(left, left + shape[1]))
    num_img = torch.view_as_complex(num).reshape(hp, wp)[crop]
    den = den.reshape(hp, wp)[crop]
    img = torch.where(den > 1e-3 * den.max(), num_img / den.clamp_min(1e-12), 0)
    return img.cpu().numpy(), den.cpu().numpy()
