"""TensorFlow twin of the PtychoPINN physics layers (:mod:`fly64_train.physics`).

The conventions are those of :mod:`fly64_data.physics`: a patch pixel ``[N/2, N/2]``
is its scan position, sub-pixel translation is bilinear resampling with zeros
outside (``W[i, k] = max(0, 1 - |origin + i - k|)``, coordinates in float64), the
far field is ``fftshift(fft2(psi, norm="ortho"))``. The gs2 merge places each
patch times the weights on a canvas and divides by the placed weights themselves,
so numerator and denominator carry identical weights. The convention tests run
the same checks against this module and the torch one.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

#: Denominator floor of the merge; below it a canvas pixel counts as uncovered (as in torch).
MERGE_EPS = 1e-6
#: Keeps log(lambda) finite where the model predicts no photons (as in torch).
POISSON_EPS = 1e-8


def interp_matrix(n_out: int | tf.Tensor, n_in: int | tf.Tensor, origin: tf.Tensor,
                  dtype: tf.DType = tf.float32) -> tf.Tensor:
    """Bilinear weights ``(..., n_out, n_in)`` sampling the input at ``origin + i`` (zero outside)."""
    # float64 coordinates keep sub-pixel precision at large origins; only the weights are cast.
    origin = tf.cast(origin, tf.float64)
    i = tf.range(n_out, dtype=tf.float64)
    k = tf.range(n_in, dtype=tf.float64)
    coord = origin[..., None, None] + i[:, None]
    weights = tf.maximum(1.0 - tf.abs(coord - k), 0.0)
    return tf.cast(weights, dtype)


def resample(images: tf.Tensor, y0: tf.Tensor, x0: tf.Tensor, n_out: int | tf.Tensor) -> tf.Tensor:
    """Sample ``images[..., H, W]`` on the grid ``(y0 + i, x0 + j)`` (``y0``, ``x0`` batch-shaped)."""
    h, w = tf.shape(images)[-2], tf.shape(images)[-1]
    wy = tf.cast(interp_matrix(n_out, h, y0), images.dtype)
    wx = tf.cast(interp_matrix(n_out, w, x0), images.dtype)
    return tf.matmul(tf.matmul(wy, images), wx, transpose_b=True)


def extract_patches(obj: tf.Tensor, ycoords: tf.Tensor, xcoords: tf.Tensor, n: int) -> tf.Tensor:
    """N x N patches of ``obj[H, W]`` centred at the scan positions."""
    ycoords, xcoords = tf.cast(ycoords, tf.float64), tf.cast(xcoords, tf.float64)
    return resample(obj, ycoords - n // 2, xcoords - n // 2, n)


def support_mask(n: int, fraction: float = 0.5) -> np.ndarray:
    """Central square of side ``fraction * N`` (ones) in an N x N frame (zeros), float32."""
    side = int(round(fraction * n))
    lo = (n - side) // 2
    mask = np.zeros((n, n), np.float32)
    mask[lo:lo + side, lo:lo + side] = 1.0
    return mask


def far_field(psi: tf.Tensor) -> tf.Tensor:
    """Unitary far field with DC at ``[N/2, N/2]``: ``fftshift(fft2(psi, norm="ortho"))``."""
    h, w = psi.shape[-2], psi.shape[-1]
    spectrum = tf.signal.fft2d(psi) / tf.cast(math.sqrt(h * w), psi.dtype)
    return tf.signal.fftshift(spectrum, axes=(-2, -1))


def far_field_intensity(psi: tf.Tensor) -> tf.Tensor:
    return tf.abs(far_field(psi)) ** 2


def canvas_size(offsets: tf.Tensor, n: int) -> tf.Tensor:
    """Even canvas side ``M = N + 2 * pad`` with ``pad`` from the largest |offset|, so nothing falls off.

    A scalar int32 tensor: inside a traced training step it follows each batch, as in torch.
    """
    offsets = tf.convert_to_tensor(offsets)
    reach = tf.reduce_max(tf.abs(tf.cast(offsets, tf.float64))) if offsets.shape.num_elements() != 0 else 0.0
    return n + 2 * (tf.cast(tf.math.ceil(reach), tf.int32) + 1)


def place_on_canvas(patches: tf.Tensor, offsets: tf.Tensor, m: int | tf.Tensor) -> tf.Tensor:
    """Translate ``patches[B, C, N, N]`` onto ``M x M`` canvases (one per patch, not summed)."""
    n = patches.shape[-1]
    offsets = tf.cast(offsets, tf.float64)
    shift = tf.cast(n // 2 - m // 2, tf.float64)
    return resample(patches, shift - offsets[..., 0], shift - offsets[..., 1], m)


def extract_from_canvas(canvas: tf.Tensor, offsets: tf.Tensor, n: int) -> tf.Tensor:
    """Cut ``C`` patches of size N out of ``canvas[B, M, M]`` at ``offsets[B, C, 2]``."""
    m = tf.shape(canvas)[-1]
    offsets = tf.cast(offsets, tf.float64)
    shift = tf.cast(m // 2 - n // 2, tf.float64)
    return resample(canvas[:, None], offsets[..., 0] + shift, offsets[..., 1] + shift, n)


def merge_patches(patches: tf.Tensor, offsets: tf.Tensor, weights: tf.Tensor,
                  m: int | tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """Merge a group's patches into one canvas with identical weights above and below the line.

    Returns ``(canvas (B, M, M) complex, coverage (B, M, M) real)``; see the torch twin.
    """
    n = patches.shape[-1]
    m = canvas_size(offsets, n) if m is None else m
    weights = tf.cast(weights, tf.float32)
    placed_w = place_on_canvas(tf.broadcast_to(weights, tf.shape(patches)), offsets, m)
    placed = place_on_canvas(patches * tf.cast(weights, patches.dtype), offsets, m)
    coverage = tf.reduce_sum(placed_w, axis=1)
    canvas = tf.reduce_sum(placed, axis=1) / tf.cast(tf.maximum(coverage, MERGE_EPS), patches.dtype)
    return canvas, coverage


def merge_and_reextract(patches: tf.Tensor, offsets: tf.Tensor, weights: tf.Tensor,
                        m: int | tf.Tensor | None = None) -> tf.Tensor:
    """The gs2 object constraint: each patch becomes the consensus of its group."""
    canvas, _ = merge_patches(patches, offsets, weights, m)
    return extract_from_canvas(canvas, offsets, patches.shape[-1])


def diffracted_intensity(obj_patches: tf.Tensor, probe: tf.Tensor) -> tf.Tensor:
    """Noiseless far-field intensity of the exit waves ``probe * obj_patches``."""
    return far_field_intensity(tf.cast(probe, obj_patches.dtype) * obj_patches)


def forward_intensity(obj_patches: tf.Tensor, probe: tf.Tensor, offsets: tf.Tensor | None, weights: tf.Tensor,
                      m: int | tf.Tensor | None = None) -> tf.Tensor:
    """Object patches ``(B, C, N, N)`` -> predicted intensities, merging groups of more than one patch."""
    if obj_patches.shape[1] > 1:
        if offsets is None:
            raise ValueError("groups of more than one patch need their offsets for the merge")
        obj_patches = merge_and_reextract(obj_patches, offsets, weights, m)
    return diffracted_intensity(obj_patches, probe)


def counts_of(diffraction: tf.Tensor, intensity_scale: float | tf.Tensor) -> tf.Tensor:
    """Photon counts ``k = (s * diffraction)^2`` of DATA-001 diffraction amplitudes."""
    return (diffraction * intensity_scale) ** 2


def poisson_nll_counts(intensity: tf.Tensor, counts: tf.Tensor, rate_scale: float | tf.Tensor,
                       eps: float = POISSON_EPS) -> tf.Tensor:
    """Mean Poisson NLL of ``counts`` under ``lambda = rate_scale * intensity`` (log k! dropped)."""
    lam = intensity * rate_scale
    return tf.reduce_mean(lam - counts * tf.math.log(lam + eps))


def poisson_nll(intensity: tf.Tensor, diffraction: tf.Tensor, intensity_scale: float | tf.Tensor,
                eps: float = POISSON_EPS) -> tf.Tensor:
    """Mean Poisson NLL in counts: ``lambda = s^2 * intensity``, ``k = (s * diffraction)^2``, ``s`` fixed."""
    return poisson_nll_counts(intensity, counts_of(diffraction, intensity_scale), intensity_scale**2, eps)


def split_counts(diffraction: tf.Tensor, intensity_scale: float | tf.Tensor, fraction: float,
                 seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Split each pattern's photons by binomial thinning (see the torch twin for why).

    ``seed`` is a stateless seed (shape (2,) int): the same seed gives the same split on
    every run, so training stays deterministic without any generator state.

    Returns ``(sqrt(k1 / fraction) / s, k2)`` with ``k1 ~ Binomial(k, fraction)``, ``k2 = k - k1``.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"count split fraction must be in (0, 1), got {fraction}")
    counts = tf.round(counts_of(diffraction, intensity_scale))
    first = tf.random.stateless_binomial(tf.shape(counts), seed, counts, fraction, output_dtype=counts.dtype)
    return tf.sqrt(first / fraction) / intensity_scale, counts - first
