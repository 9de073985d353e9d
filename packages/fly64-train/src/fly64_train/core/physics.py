"""PtychoPINN's physics conventions, written once for every backend.

Each function takes the array module ``xp`` (``numpy``, ``torch`` or ``tensorflow``);
left out, it is the module of the first array argument (:func:`array_module`). The
backends' physics modules (``backends/<name>/physics.py``) are these functions, so a
torch and a TensorFlow model cannot drift apart: only the few lines that differ by
framework (TensorFlow has no implicit type promotion, traced canvas sizes, stateless
random seeds) branch on ``xp``. Translations and the far field are calls into
:mod:`fly64_data.physics`, the simulator's own convention: a patch pixel ``[N/2, N/2]``
is its scan position, sub-pixel translation is bilinear resampling with zeros outside
(coordinates in float64), the far field is the unitary, fftshifted FFT.

gs2 merge
---------
A group's ``C`` patches sit at ``offsets`` (dy, dx) relative to the group
centroid. The canvas has size ``M = N + 2 * pad`` with its pixel ``[M/2, M/2]``
at the centroid, so patch ``c`` is placed by sampling it at origin
``N/2 - M/2 - off_c`` and re-extracted by sampling the canvas at origin
``off_c + M/2 - N/2``. The merged canvas is
``sum_c place(O_c * w) / sum_c place(w)`` with the *same* placed weights ``w``
(the support) in numerator and denominator, so consistent patches merge back
to themselves wherever the support covers them.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from fly64_data import physics as conv

#: The physics API every backend's ``physics`` module exports (``from fly64_train.core.physics import *``).
__all__ = [
    "MERGE_EPS", "POISSON_EPS", "VAL_SPLIT_SEED", "canvas_size", "counts_of", "diffracted_intensity",
    "extract_from_canvas", "extract_patches", "forward_intensity", "merge_and_reextract", "merge_patches",
    "place_on_canvas", "poisson_nll", "poisson_nll_counts", "split_counts", "support_mask",
]

#: Denominator floor of the merge; below it a canvas pixel counts as uncovered.
MERGE_EPS = 1e-6
#: Keeps log(lambda) finite where the model predicts no photons.
POISSON_EPS = 1e-8
#: Seed of the validation batches' photon splits (fixed, so val_loss compares across epochs).
VAL_SPLIT_SEED = 20_261_122


def array_module(a: Any) -> Any:
    """``torch``, ``tensorflow`` or ``numpy``: the module whose array ``a`` is.

    Recognised by the array type's top-level package (a Keras variable counts as
    TensorFlow), looked up among the loaded modules: this module imports no framework.
    """
    root = type(a).__module__.partition(".")[0]
    if root == "torch":
        return sys.modules["torch"]
    if root in ("tensorflow", "keras"):
        return sys.modules["tensorflow"]
    return np


def _is_tf(xp: Any) -> bool:
    return getattr(xp, "__name__", "") == "tensorflow"


def _like(b: Any, a: Any, xp: Any) -> Any:
    """``b`` ready to combine with ``a``: TensorFlow multiplies only equal dtypes (real -> complex)."""
    return xp.cast(b, a.dtype) if _is_tf(xp) else b


def _astype(a: Any, like: Any, xp: Any) -> Any:
    """``a`` in ``like``'s dtype."""
    if _is_tf(xp):
        return xp.cast(a, like.dtype)
    return a.astype(like.dtype) if xp is np else a.to(like.dtype)


def _float64(a: Any, xp: Any) -> Any:
    """Coordinates in float64, as :func:`fly64_data.physics.resample` forms them."""
    if _is_tf(xp):
        return xp.cast(a, xp.float64)
    return np.asarray(a, np.float64) if xp is np else a.double()


def _shift(value: Any, xp: Any) -> Any:
    """A canvas/patch centre difference, ready to add to float64 offsets (a traced int32 under TensorFlow)."""
    return xp.cast(value, xp.float64) if _is_tf(xp) else value


def _sum_over_patches(a: Any, xp: Any) -> Any:
    if _is_tf(xp):
        return xp.reduce_sum(a, axis=1)
    return a.sum(axis=1) if xp is np else a.sum(dim=1)


def _mean(a: Any, xp: Any) -> Any:
    return xp.reduce_mean(a) if _is_tf(xp) else a.mean()


def extract_patches(obj: Any, ycoords: Any, xcoords: Any, n: int, xp: Any = None) -> Any:
    """N x N patches of ``obj[..., H, W]`` centred at the scan positions (the simulator's extraction)."""
    xp = xp or array_module(obj)
    return conv.resample(obj, conv.patch_origin(ycoords, n), conv.patch_origin(xcoords, n), n, xp=xp)


def support_mask(n: int, fraction: float = 0.5) -> np.ndarray:
    """Central square of side ``fraction * N`` (ones) in an N x N frame (zeros), float32."""
    side = int(round(fraction * n))
    lo = (n - side) // 2
    mask = np.zeros((n, n), np.float32)
    mask[lo:lo + side, lo:lo + side] = 1.0
    return mask


def canvas_size(offsets: Any, n: int, xp: Any = None) -> Any:
    """Even canvas side ``M = N + 2 * pad`` with ``pad`` from the largest |offset|, so nothing falls off.

    An int; under TensorFlow a scalar int32 tensor, so that inside a traced training
    step it follows each batch.
    """
    xp = xp or array_module(offsets)
    if _is_tf(xp):
        offsets = xp.convert_to_tensor(offsets)
        empty = offsets.shape.num_elements() == 0
        reach = 0.0 if empty else xp.reduce_max(xp.abs(xp.cast(offsets, xp.float64)))
        return n + 2 * (xp.cast(xp.math.ceil(reach), xp.int32) + 1)
    reach = float(abs(offsets).max()) if math.prod(offsets.shape) else 0.0
    return n + 2 * (int(math.ceil(reach)) + 1)


def place_on_canvas(patches: Any, offsets: Any, m: Any, xp: Any = None) -> Any:
    """Translate ``patches[B, C, N, N]`` onto ``M x M`` canvases (one per patch, not summed)."""
    xp = xp or array_module(patches)
    offsets = _float64(offsets, xp)
    shift = _shift(patches.shape[-1] // 2 - m // 2, xp)
    return conv.resample(patches, shift - offsets[..., 0], shift - offsets[..., 1], m, xp=xp)


def extract_from_canvas(canvas: Any, offsets: Any, n: int, xp: Any = None) -> Any:
    """Cut ``C`` patches of size N out of ``canvas[B, M, M]`` at ``offsets[B, C, 2]``."""
    xp = xp or array_module(canvas)
    m = xp.shape(canvas)[-1] if _is_tf(xp) else canvas.shape[-1]
    offsets = _float64(offsets, xp)
    shift = _shift(m // 2 - n // 2, xp)
    return conv.resample(canvas[:, None], offsets[..., 0] + shift, offsets[..., 1] + shift, n, xp=xp)


def merge_patches(patches: Any, offsets: Any, weights: Any, m: Any = None, xp: Any = None) -> tuple[Any, Any]:
    """Merge a group's patches into one canvas with identical weights above and below the line.

    Parameters
    ----------
    patches : (B, C, N, N) complex array
    offsets : (B, C, 2) real array, (dy, dx) of each patch centre relative to the group centroid
    weights : (N, N) real array, the support each patch contributes with
    m : int, optional
        Canvas side; defaults to :func:`canvas_size`.

    Returns
    -------
    canvas : (B, M, M) complex array
    coverage : (B, M, M) real array, the summed placed weights (0 where nothing covers)
    """
    xp = xp or array_module(patches)
    m = canvas_size(offsets, patches.shape[-1], xp) if m is None else m
    offsets = _astype(offsets, weights, xp)
    if _is_tf(xp):
        spread = xp.broadcast_to(weights, xp.shape(patches))
    else:  # contiguous: the gather reads it row by row
        spread = np.broadcast_to(weights, patches.shape) if xp is np else weights.expand(patches.shape).contiguous()
    coverage = _sum_over_patches(place_on_canvas(spread, offsets, m, xp), xp)
    placed = place_on_canvas(patches * _like(weights, patches, xp), offsets, m, xp)
    floor = xp.maximum(coverage, MERGE_EPS) if xp is np or _is_tf(xp) else coverage.clamp_min(MERGE_EPS)
    return _sum_over_patches(placed, xp) / _like(floor, placed, xp), coverage


def merge_and_reextract(patches: Any, offsets: Any, weights: Any, m: Any = None, xp: Any = None) -> Any:
    """The gs2 object constraint: each patch becomes the consensus of its group (canvas side ``m``,
    default :func:`canvas_size`; any larger even side gives the same patches)."""
    xp = xp or array_module(patches)
    canvas, _ = merge_patches(patches, offsets, weights, m, xp)
    return extract_from_canvas(canvas, _astype(offsets, weights, xp), patches.shape[-1], xp)


def diffracted_intensity(obj_patches: Any, probe: Any, xp: Any = None) -> Any:
    """Noiseless far-field intensity of the exit waves ``probe * obj_patches``."""
    xp = xp or array_module(obj_patches)
    return conv.far_field_intensity(_like(probe, obj_patches, xp) * obj_patches, xp=xp)


def forward_intensity(obj_patches: Any, probe: Any, offsets: Any | None, weights: Any,
                      canvas_side: Any = None, xp: Any = None) -> Any:
    """Object patches ``(B, C, N, N)`` -> predicted intensities, merging groups of more than one patch first."""
    xp = xp or array_module(obj_patches)
    if obj_patches.shape[1] > 1:
        if offsets is None:
            raise ValueError("groups of more than one patch need their offsets for the merge")
        obj_patches = merge_and_reextract(obj_patches, offsets, weights, canvas_side, xp)
    return diffracted_intensity(obj_patches, probe, xp)


def counts_of(diffraction: Any, intensity_scale: Any) -> Any:
    """Photon counts ``k = (s * diffraction)^2`` of DATA-001 diffraction amplitudes."""
    return (diffraction * intensity_scale) ** 2


def poisson_nll_counts(intensity: Any, counts: Any, rate_scale: Any, eps: float = POISSON_EPS,
                       xp: Any = None) -> Any:
    """Mean Poisson NLL of ``counts`` under the rate ``lambda = rate_scale * intensity`` (log k! dropped)."""
    xp = xp or array_module(intensity)
    log = xp.math.log if _is_tf(xp) else xp.log
    lam = intensity * rate_scale
    return _mean(lam - counts * log(lam + eps), xp)


def poisson_nll(intensity: Any, diffraction: Any, intensity_scale: Any, eps: float = POISSON_EPS,
                xp: Any = None) -> Any:
    """Mean Poisson negative log-likelihood in photon counts (constant log k! dropped).

    Predicted counts ``lambda = s^2 * intensity`` and observed counts
    ``k = (s * diffraction)^2``, with ``s`` the dataset's recorded
    ``intensity_scale`` (fixed, never learned).
    """
    return poisson_nll_counts(intensity, counts_of(diffraction, intensity_scale), intensity_scale**2, eps, xp)


def split_counts(diffraction: Any, intensity_scale: Any, fraction: float, rng: Any = None,
                 xp: Any = None) -> tuple[Any, Any]:
    """Split each pattern's photons into two independent halves by binomial thinning.

    Each of the ``k`` counts of a pixel goes to the first part with probability
    ``fraction``: ``k1 ~ Binomial(k, fraction)``, ``k2 = k - k1``. For Poisson
    ``k`` with mean ``lambda`` the parts are *independent* Poisson variables with
    means ``fraction * lambda`` and ``(1 - fraction) * lambda``. A network fed
    ``k1`` and scored on ``k2`` therefore cannot reproduce the noise of the
    counts it is scored on: the best it can do is the true mean intensity.

    ``rng`` is the framework's randomness: a ``torch.Generator`` (or None, torch's
    global one), a TensorFlow stateless seed (shape (2,) int; required: the same seed
    gives the same split on every run, with no generator state), a numpy
    ``Generator`` (or None, a fresh unseeded one).

    Returns
    -------
    (input_diffraction, target_counts)
        ``input_diffraction = sqrt(k1 / fraction) / s`` (diffraction amplitudes on
        the full pattern's scale, so the encoder sees the usual range) and
        ``target_counts = k2``, whose rate is ``(1 - fraction) * s^2 * intensity``.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"count split fraction must be in (0, 1), got {fraction}")
    xp = xp or array_module(diffraction)
    counts = xp.round(counts_of(diffraction, intensity_scale))
    if _is_tf(xp):
        if rng is None:
            raise ValueError("TensorFlow's count split needs a stateless seed (shape (2,) int)")
        first = xp.random.stateless_binomial(xp.shape(counts), rng, counts, fraction, output_dtype=counts.dtype)
    elif xp is np:
        rng = np.random.default_rng() if rng is None else rng
        first = rng.binomial(counts.astype(np.int64), fraction).astype(counts.dtype)
    else:
        first = xp.binomial(counts, xp.full_like(counts, fraction), generator=rng)
    return xp.sqrt(first / fraction) / intensity_scale, counts - first
