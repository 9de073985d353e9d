"""The stitch of :mod:`fly64_train.evaluation.stitch`, run by torch on the model's device.

Same geometry (:func:`~fly64_train.evaluation.stitch.stitch_layout`), same weights,
same frame: each patch's weighted box is spread bilinearly over its window of the
object frame (the :func:`fly64_data.physics.resample` tent kernel) and every window
is summed into the frame with one ``index_add_`` per chunk of patches, numerator and
denominator alike. Accumulation is in
float64 as in the numpy reference, which a test pins to 1e-6. On a GPU the patches
are scattered where the CNN produced them instead of in one host core's loop.
"""

from __future__ import annotations

import numpy as np
import torch

from fly64_train.evaluation.stitch import check_patches, stitch_layout, window_indices

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
    patches = check_patches(patches, weight)
    device = torch.device(device)
    layout = stitch_layout(patches.shape[-1], ycoords, xcoords, shape, weight)
    patches = patches[(slice(None), *layout.box)]
    w = torch.from_numpy(np.asarray(weight[layout.box], np.float64)).to(device)
    fy, fx = torch.from_numpy(layout.fy).to(device), torch.from_numpy(layout.fx).to(device)
    r0, c0 = torch.from_numpy(layout.r0).to(device), torch.from_numpy(layout.c0).to(device)
    row_steps, col_steps = (torch.arange(k, device=device) for k in layout.window_shape)
    hp, wp = layout.padded_shape
    num = torch.zeros((hp * wp, 2), dtype=torch.float64, device=device)  # real, imaginary
    den = torch.zeros(hp * wp, dtype=torch.float64, device=device)
    chunk = max(1, CHUNK_PIXELS // (layout.window_shape[0] * layout.window_shape[1]))
    for start in range(0, len(patches), chunk):
        sl = slice(start, start + chunk)
        p = torch.from_numpy(np.ascontiguousarray(patches[sl])).to(device)
        flat = window_indices(r0[sl], c0[sl], row_steps, col_steps, wp).reshape(-1)  # built on the device
        values = torch.view_as_real((p * w).to(torch.complex128))  # (B, h, w, 2)
        num.index_add_(0, flat, _spread(values, fy[sl], fx[sl]).reshape(-1, 2))
        den.index_add_(0, flat, _spread(w.expand(p.shape[0], *w.shape), fy[sl], fx[sl]).reshape(-1))
    num_img = torch.view_as_complex(num).reshape(hp, wp)[layout.crop]
    den = den.reshape(hp, wp)[layout.crop]
    img = torch.where(den > 1e-3 * den.max(), num_img / den.clamp_min(1e-12), 0)
    return img.cpu().numpy(), den.cpu().numpy()
