"""Reconstruct a scan from a trained model: predict every patch, stitch them in the object frame.

Scoring lives in :mod:`fly64_train.evaluation.metrics` and :mod:`fly64_train.evaluation.evaluate`.

Stitching places each predicted patch in the object frame with the probe
intensity ``|P|^2`` (times the model's support) as weight, using the shared
bilinear convention: a patch centred at ``(y, x)`` covers object pixels
``y - N/2 + i``.
"""

from __future__ import annotations

import numpy as np

from fly64_data.physics import resample


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
