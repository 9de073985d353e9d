"""Reconstruct a scan from a trained model: predict every patch, stitch them in the object frame.

Scoring lives in :mod:`fly64_train.metrics` and :mod:`fly64_train.evaluate`.

Stitching places each predicted patch in the object frame with the probe
intensity ``|P|^2`` (times the model's support) as weight, using the shared
bilinear convention: a patch centred at ``(y, x)`` covers object pixels
``y - N/2 + i``.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from fly64_data.physics import resample
from fly64_train.dataset import open_dataset
from fly64_train.grouping import make_groups
from fly64_train.model import PtychoPINN


@torch.no_grad()
def predict_patches(model: PtychoPINN, path: str | os.PathLike, neighbor_count: int = 7,
                    grouping_seed: int = 123, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Object patch at every position of a dataset (gs2: each position predicted as a group seed).

    Returns ``(patches (n, N, N) complex64, ycoords, xcoords)``.
    """
    info = open_dataset(path, model.cfg.gridsize, neighbor_count)
    groups = make_groups(info.ycoords, info.xcoords, model.cfg.gridsize, neighbor_count, None, grouping_seed)
    out = np.empty((info.n, info.patch_size, info.patch_size), np.complex64)
    model.eval()
    device = next(model.parameters()).device
    for start in range(0, len(groups), batch_size):
        idx = groups.indices[start:start + batch_size]
        diff = np.stack([info.diffraction.read_rows(row) for row in idx])
        obj = model.predict_object(torch.from_numpy(diff).to(device))[:, 0].cpu().numpy()
        out[idx[:, 0]] = obj  # column 0 is the seed: every position exactly once
    return out, info.ycoords, info.xcoords


def stitch(patches: np.ndarray, ycoords: np.ndarray, xcoords: np.ndarray, shape: tuple[int, int],
           weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted average of patches in an object frame of ``shape``; returns (image, summed weight)."""
    n = patches.shape[-1]
    num = np.zeros(shape, np.complex128)
    den = np.zeros(shape, np.float64)
    for patch, y, x in zip(patches, ycoords, xcoords, strict=True):
        oy, ox = y - n / 2, x - n / 2
        r0, c0 = int(np.floor(oy)), int(np.floor(ox))
        # Window pixel i is object pixel r0 + i, i.e. patch coordinate i - (oy - r0).
        fy, fx = oy - r0, ox - c0
        w = resample(weight.astype(np.float64), -fy, -fx, n + 1)
        v = resample((patch * weight).astype(np.complex128), -fy, -fx, n + 1)
        rs = slice(max(r0, 0), min(r0 + n + 1, shape[0]))
        cs = slice(max(c0, 0), min(c0 + n + 1, shape[1]))
        wr = slice(rs.start - r0, rs.stop - r0)
        wc = slice(cs.start - c0, cs.stop - c0)
        num[rs, cs] += v[wr, wc]
        den[rs, cs] += w[wr, wc]
    img = np.where(den > 1e-3 * den.max(), num / np.maximum(den, 1e-12), 0)
    return img, den
