"""The vectorised stitches equal the per-patch loop they replaced (kept here only, as the reference).

Two implementations: the numpy one of the evaluation layer and the torch one a torch model stitches
with on its own device (run here on CPU: the same code a GPU runs).
"""

from __future__ import annotations

import numpy as np
import pytest

from fly64_data.physics import resample
from fly64_data.sample import raster_scan, synthetic_object, synthetic_probe
from fly64_train.evaluation.stitch import stitch as numpy_stitch


def _torch_stitch(*args):
    from fly64_train.backends.torch.stitch import stitch as device_stitch

    return device_stitch(*args, device="cpu")


STITCHES = [pytest.param(numpy_stitch, id="numpy"), pytest.param(_torch_stitch, id="torch-device")]


def loop_stitch(patches, ycoords, xcoords, shape, weight):
    """The Python-loop stitch of fly64-train <= 0.1 (one resample per patch), verbatim in behaviour."""
    n = patches.shape[-1]
    num = np.zeros(shape, np.complex128)
    den = np.zeros(shape, np.float64)
    for patch, y, x in zip(patches, ycoords, xcoords, strict=True):
        oy, ox = y - n / 2, x - n / 2
        r0, c0 = int(np.floor(oy)), int(np.floor(ox))
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


@pytest.mark.parametrize("stitch", STITCHES)
@pytest.mark.parametrize("n, step, edge, support", [(32, 5.0, False, None), (16, 3.3, True, None),
                                                     (33, 7.0, False, None), (32, 5.0, True, (8, 24, 5, 27))])
def test_vectorised_stitch_equals_the_loop_stitch(n, step, edge, support, stitch):
    rng = np.random.default_rng(n)
    obj = synthetic_object(140, 3)
    x, y = raster_scan(obj.shape, n, step, 3)
    if edge:  # patches hanging over every border of the frame are clipped the same way
        y = np.concatenate([y, [1.3, 138.6, 70.2, 70.7]])
        x = np.concatenate([x, [70.4, 70.1, 0.2, 139.9]])
    patches = (rng.standard_normal((y.size, n, n)) + 1j * rng.standard_normal((y.size, n, n))).astype(np.complex64)
    weight = np.abs(synthetic_probe(n)).astype(np.float64) ** 2
    if support is not None:  # the model's support: only an off-centre box of each patch is weighted
        r0, r1, c0, c1 = support
        box = np.zeros_like(weight)
        box[r0:r1, c0:c1] = 1
        weight *= box
    image, summed = stitch(patches, y, x, obj.shape, weight)
    ref_image, ref_summed = loop_stitch(patches, y, x, obj.shape, weight)
    assert np.abs(summed - ref_summed).max() < 1e-6 * max(1.0, ref_summed.max())
    assert np.abs(image - ref_image).max() < 1e-6


@pytest.mark.parametrize("stitch", STITCHES)
def test_patches_that_do_not_fit_the_weight_are_refused(stitch):
    with pytest.raises(ValueError, match=r"patches must be \(P, N, N\)"):
        stitch(np.zeros((3, 8, 8)), np.zeros(3), np.zeros(3), (20, 20), np.ones((9, 9)))
