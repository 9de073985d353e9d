"""The one imaging convention shared by the simulator and the model.

Every function takes an array module ``xp`` (``numpy``, ``torch`` or ``tensorflow``;
:func:`interp_matrix`, the definition :func:`resample` is pinned against, numpy or
torch) so that the simulator (numpy) and both backends' PtychoPINN physics layers
run *this* code, not copies of it. TensorFlow has no implicit type promotion and
no numpy-style fft/gather, so it gets its own branch in the few helpers below that
touch the framework; the arithmetic is the same.

Conventions
-----------
Coordinates
    An image pixel ``[row, col]`` sits at coordinate ``(y, x) = (row, col)``.
    Scan positions ``(ycoords, xcoords)`` are patch centres in object pixels.
Patches
    A patch of size N centred at ``(y, x)`` holds the object sampled at
    ``(y - N/2 + i, x - N/2 + j)`` for ``i, j = 0 .. N-1``: its pixel
    ``[N/2, N/2]`` is the scan position.
Sub-pixel sampling
    Bilinear (tent-kernel) interpolation, zero outside the source image.
    Sampling at integer coordinates is exact; sampling at a fractional
    coordinate mixes the two neighbouring pixels per axis.
Far field
    ``fftshift(fft2(psi, norm="ortho"))`` over the last two axes: unitary
    (Parseval: sum |psi|^2 == sum |Psi|^2), zero frequency (DC) at pixel
    ``[N/2, N/2]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.fft

FFT_AXES = (-2, -1)


def far_field(psi: Any, xp: Any = np) -> Any:
    """Unitary far-field propagation with DC at ``[N/2, N/2]``.

    Defined as ``fftshift(fft2(psi, norm="ortho"))``. For even sizes it is
    computed as ``fft2(psi * (-1)^(row + col))``, which is the same transform
    exactly (multiplying by +-1 is exact) and avoids the copy an fftshift makes.
    """
    h, w = psi.shape[-2], psi.shape[-1]
    if h % 2 or w % 2:
        shift = xp.signal.fftshift if _is_tf(xp) else xp.fft.fftshift
        return shift(_fft2(psi, xp), FFT_AXES)
    return _fft2(psi * _checkerboard(h, w, xp, psi), xp)


def _is_tf(xp: Any) -> bool:
    """Whether ``xp`` is TensorFlow (recognised by name: this module never imports a framework)."""
    return getattr(xp, "__name__", "") == "tensorflow"


def _fft2(psi: Any, xp: Any) -> Any:
    if xp is np:
        # scipy's pocketfft keeps complex64 and uses every core; same transform as numpy's.
        return scipy.fft.fft2(psi, norm="ortho", workers=-1)
    if _is_tf(xp):
        # TensorFlow's fft2d is unnormalised: "ortho" is the division by sqrt(H * W).
        return xp.signal.fft2d(psi) / xp.cast(math.sqrt(psi.shape[-2] * psi.shape[-1]), psi.dtype)
    return xp.fft.fft2(psi, norm="ortho")


def _checkerboard(h: int, w: int, xp: Any, like: Any) -> Any:
    if xp is np or _is_tf(xp):
        rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
        board = 1 - 2 * ((rows + cols) % 2)
        if _is_tf(xp):
            # TensorFlow multiplies only equal dtypes: the +-1 board takes the wave's (complex) dtype.
            return xp.cast(board, like.dtype)
        return board.astype(np.float32 if like.dtype in (np.complex64, np.float32) else np.float64)
    rows = xp.arange(h, device=like.device)[:, None]
    cols = xp.arange(w, device=like.device)[None, :]
    return (1 - 2 * ((rows + cols) % 2)).to(_real_dtype(like, xp))


def far_field_intensity(psi: Any, xp: Any = np) -> Any:
    """``|far_field(psi)|^2``, the noiseless diffracted intensity."""
    return xp.abs(far_field(psi, xp)) ** 2


def interp_matrix(n_out: int, n_in: int, origin: Any, xp: Any = np, dtype: Any = None) -> Any:
    """Bilinear resampling weights along one axis.

    Row ``i`` samples the input at coordinate ``origin + i`` with a tent kernel:
    ``W[..., i, k] = max(0, 1 - |origin + i - k|)``. ``origin`` may be a scalar
    or a batch of shape ``(B,)``; the result has shape ``(B, n_out, n_in)`` (or
    ``(n_out, n_in)`` for a scalar). Coordinates outside ``[0, n_in - 1]`` get
    zero weight (zero padding).
    """
    # Coordinates are formed in float64 so that large origins (object pixels in
    # the hundreds) keep sub-pixel precision; only the weights are cast.
    if xp is np:
        origin = np.asarray(origin, dtype=np.float64)
        i = np.arange(n_out, dtype=np.float64)
        k = np.arange(n_in, dtype=np.float64)
    else:
        origin = xp.as_tensor(origin, dtype=xp.float64)
        i = xp.arange(n_out, dtype=xp.float64, device=origin.device)
        k = xp.arange(n_in, dtype=xp.float64, device=origin.device)
    coord = origin[..., None, None] + i[:, None]  # (..., n_out, 1)
    weights = xp.clip(1.0 - xp.abs(coord - k), 0.0, None)
    if dtype is None:
        return weights
    return weights.astype(dtype) if xp is np else weights.to(dtype)


def resample(images: Any, y0: Any, x0: Any, n_out: int | tuple[int, int], xp: Any = np) -> Any:
    """Sample ``images[..., H, W]`` on the grid ``(y0 + i, x0 + j)``.

    ``y0`` and ``x0`` broadcast against the leading (batch) dimensions of
    ``images``. This is the single definition of sub-pixel translation in the
    project: extraction, the gs2 merge onto a canvas and re-extraction from it
    are all calls to this function.

    The result is ``W_y @ images @ W_x.T`` with the tent-kernel matrices of
    :func:`interp_matrix` (that is the definition, pinned by a test). Each row
    of those matrices has at most two non-zero weights, so it is computed as
    two gathered taps per axis: O(out x in) work per image instead of the dense
    product's O(out x in x in), which made the gs2 merge cost as much as the CNN.
    """
    # A tuple is (ny, nx); anything else (an int, or a TensorFlow scalar inside a traced step) is square.
    ny, nx = n_out if isinstance(n_out, tuple | list) else (n_out, n_out)
    real_dtype = _real_dtype(images, xp)
    y0, x0 = _coordinate(y0, xp, images), _coordinate(x0, xp, images)
    images = _broadcast_batch(images, y0, x0, xp)
    rows = _two_taps(images, ny, _size(images, -2, xp), y0, -2, xp, real_dtype)  # (..., ny, W)
    return _two_taps(rows, nx, _size(images, -1, xp), x0, -1, xp, real_dtype)  # (..., ny, nx)


def _two_taps(a: Any, n_out: Any, n_in: Any, origin: Any, axis: int, xp: Any, real_dtype: Any) -> Any:
    """``a`` resampled along ``axis`` (-2 or -1): each output pixel is its two taps, weighted."""
    lo, hi, w_lo, w_hi = _taps(n_out, n_in, origin, xp, real_dtype)  # (..., n_out) each
    w_lo, w_hi = _along(w_lo, axis, a, xp), _along(w_hi, axis, a, xp)
    return _take(a, lo, axis, xp) * w_lo + _take(a, hi, axis, xp) * w_hi


def _along(weights: Any, axis: int, like: Any, xp: Any) -> Any:
    """Per-output-pixel weights shaped to broadcast along ``axis`` of the image."""
    weights = weights[..., :, None] if axis == -2 else weights[..., None, :]
    # TensorFlow multiplies only equal dtypes: real weights take the image's (complex) dtype.
    return xp.cast(weights, like.dtype) if _is_tf(xp) else weights


def _size(a: Any, axis: int, xp: Any) -> Any:
    """Length of ``a`` along ``axis``; a tensor under TensorFlow, where a traced canvas has no static size."""
    return xp.shape(a)[axis] if _is_tf(xp) else a.shape[axis]


def _broadcast_batch(images: Any, y0: Any, x0: Any, xp: Any) -> Any:
    """``images`` broadcast to the common batch shape of images, ``y0`` and ``x0``."""
    if _is_tf(xp):
        batch = xp.broadcast_dynamic_shape(xp.shape(images)[:-2], xp.shape(y0))
        batch = xp.broadcast_dynamic_shape(batch, xp.shape(x0))
        return xp.broadcast_to(images, xp.concat([batch, xp.shape(images)[-2:]], 0))
    batch = tuple(np.broadcast_shapes(tuple(images.shape[:-2]), tuple(y0.shape), tuple(x0.shape)))
    return _broadcast_to(images, (*batch, *images.shape[-2:]), xp)


def _coordinate(origin: Any, xp: Any, like: Any) -> Any:
    """Origins as float64 (large object coordinates keep their sub-pixel part)."""
    if xp is np:
        return np.asarray(origin, dtype=np.float64)
    if _is_tf(xp):
        return xp.cast(origin, xp.float64)
    return xp.as_tensor(origin, dtype=xp.float64, device=like.device)


def _taps(n_out: int, n_in: int, origin: Any, xp: Any, real_dtype: Any) -> tuple[Any, Any, Any, Any]:
    """The two non-zero columns of each row of :func:`interp_matrix` and their weights.

    Row ``i`` samples coordinate ``c = origin + i``: weight ``1 - frac(c)`` on
    pixel ``floor(c)`` and ``frac(c)`` on ``floor(c) + 1``, zero for a pixel
    outside ``[0, n_in - 1]`` (whose index is clipped so the gather stays in range).
    """
    if _is_tf(xp):
        return _taps_tf(n_out, n_in, origin, xp, real_dtype)
    if xp is np:
        coord = origin[..., None] + np.arange(n_out, dtype=np.float64)
        lo = np.floor(coord)
    else:
        coord = origin[..., None] + xp.arange(n_out, dtype=xp.float64, device=origin.device)
        lo = xp.floor(coord)
    frac = coord - lo
    lo = lo.astype(np.int64) if xp is np else lo.to(xp.int64)
    hi = lo + 1
    w_lo = xp.where((lo >= 0) & (lo < n_in), 1.0 - frac, 0.0)
    w_hi = xp.where((hi >= 0) & (hi < n_in), frac, 0.0)
    return (xp.clip(lo, 0, n_in - 1), xp.clip(hi, 0, n_in - 1),
            _cast(w_lo, real_dtype, xp), _cast(w_hi, real_dtype, xp))


def _taps_tf(n_out: Any, n_in: Any, origin: Any, tf: Any, real_dtype: Any) -> tuple[Any, Any, Any, Any]:
    """:func:`_taps` in TensorFlow (sizes may be traced tensors; no implicit dtype promotion)."""
    coord = origin[..., None] + tf.cast(tf.range(n_out), tf.float64)
    lo = tf.floor(coord)
    frac = coord - lo
    lo = tf.cast(lo, tf.int64)
    hi = lo + 1
    n_in = tf.cast(n_in, tf.int64)
    zero = tf.zeros_like(frac)
    w_lo = tf.where((lo >= 0) & (lo < n_in), 1.0 - frac, zero)
    w_hi = tf.where((hi >= 0) & (hi < n_in), frac, zero)
    return (tf.clip_by_value(lo, 0, n_in - 1), tf.clip_by_value(hi, 0, n_in - 1),
            tf.cast(w_lo, real_dtype), tf.cast(w_hi, real_dtype))


def _broadcast_to(a: Any, shape: tuple[int, ...], xp: Any) -> Any:
    return np.broadcast_to(a, shape) if xp is np else a.expand(shape)


def _take(a: Any, index: Any, axis: int, xp: Any) -> Any:
    """``a[..., H, W]`` gathered along ``axis`` (-2 or -1) at ``index[..., n]`` (batch-broadcast)."""
    if _is_tf(xp):
        # One gather per batch element: batch_dims covers the (already broadcast) batch axes.
        batch_rank = a.shape.rank - 2
        index = xp.broadcast_to(index, xp.concat([xp.shape(a)[:-2], xp.shape(index)[-1:]], 0))
        return xp.gather(a, index, axis=batch_rank + (0 if axis == -2 else 1), batch_dims=batch_rank)
    n = index.shape[-1]
    if axis == -2:
        index, shape = index[..., :, None], (*a.shape[:-2], n, a.shape[-1])
    else:
        index, shape = index[..., None, :], (*a.shape[:-1], n)
    if xp is np:
        return np.take_along_axis(a, np.broadcast_to(index, shape), axis=axis)
    return xp.gather(a, axis, index.expand(shape))


def patch_origin(center: Any, n: int) -> Any:
    """Coordinate sampled by patch pixel 0 along one axis for a patch centred at ``center``."""
    return center - n // 2


def extract_patches(obj: np.ndarray, ycoords: np.ndarray, xcoords: np.ndarray, n: int) -> np.ndarray:
    """Cut N x N patches centred at the scan positions out of a 2-D object (numpy).

    Equivalent to ``resample(obj, y - N/2, x - N/2, N)`` but touches only an
    (N+1) x (N+1) window per position, which keeps the simulator fast. A test
    pins the two against each other.
    """
    ycoords = np.asarray(ycoords, dtype=np.float64)
    xcoords = np.asarray(xcoords, dtype=np.float64)
    oy = patch_origin(ycoords, n)
    ox = patch_origin(xcoords, n)
    iy, ix = np.floor(oy).astype(np.int64), np.floor(ox).astype(np.int64)
    real = np.float32 if obj.dtype == np.complex64 or obj.dtype == np.float32 else np.float64
    fy, fx = (oy - iy).astype(real), (ox - ix).astype(real)
    h, w = obj.shape
    # The (N+1)-wide window must lie inside the object.
    if min(iy.min(), ix.min()) < 0 or iy.max() + n > h - 1 or ix.max() + n > w - 1:
        raise ValueError(f"scan positions reach outside the {h}x{w} object for patch size {n}")
    # One cache-sized window at a time: several times faster than a batched
    # fancy-index gather followed by whole-batch arithmetic.
    out = np.empty((iy.size, n, n), dtype=obj.dtype)
    for k, (row, col) in enumerate(zip(iy, ix, strict=True)):
        window = obj[row : row + n + 1, col : col + n + 1]
        rows = window[:-1] + fy[k] * (window[1:] - window[:-1])
        out[k] = rows[:, :-1] + fx[k] * (rows[:, 1:] - rows[:, :-1])
    return out


def _is_complex(a: Any, xp: Any) -> bool:
    return np.iscomplexobj(a) if xp is np else a.is_complex()


def _real_dtype(a: Any, xp: Any) -> Any:
    if xp is np:
        return np.float32 if a.dtype in (np.complex64, np.float32) else np.float64
    if _is_tf(xp):
        return xp.float32 if a.dtype in (xp.complex64, xp.float32) else xp.float64
    if a.dtype in (xp.complex64, xp.float32):
        return xp.float32
    return xp.float64


def _cast(a: Any, dtype: Any, xp: Any) -> Any:
    if _is_tf(xp):
        return xp.cast(a, dtype)
    return a.astype(dtype) if xp is np else a.to(dtype)
