"""The one imaging convention shared by the simulator and the model.

Every function takes an array module ``xp`` (``numpy`` or ``torch``) so that the
simulator (numpy) and the PtychoPINN physics layers (torch) run *this* code, not
two copies of it.

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

from typing import Any

import numpy as np

FFT_AXES = (-2, -1)


def far_field(psi: Any, xp: Any = np) -> Any:
    """Unitary far-field propagation with DC at ``[N/2, N/2]``."""
    return xp.fft.fftshift(xp.fft.fft2(psi, norm="ortho"), FFT_AXES)


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
    if xp is np:
        origin = np.asarray(origin, dtype=dtype or np.float64)
        i = np.arange(n_out, dtype=origin.dtype)
        k = np.arange(n_in, dtype=origin.dtype)
    else:
        origin = xp.as_tensor(origin, dtype=dtype or xp.float32)
        i = xp.arange(n_out, dtype=origin.dtype, device=origin.device)
        k = xp.arange(n_in, dtype=origin.dtype, device=origin.device)
    coord = origin[..., None, None] + i[:, None]  # (..., n_out, 1)
    return xp.clip(1.0 - xp.abs(coord - k), 0.0, None)


def resample(images: Any, y0: Any, x0: Any, n_out: int | tuple[int, int], xp: Any = np) -> Any:
    """Sample ``images[..., H, W]`` on the grid ``(y0 + i, x0 + j)``.

    ``y0`` and ``x0`` broadcast against the leading (batch) dimensions of
    ``images``. This is the single definition of sub-pixel translation in the
    project: extraction, the gs2 merge onto a canvas and re-extraction from it
    are all calls to this function.
    """
    ny, nx = (n_out, n_out) if isinstance(n_out, int) else n_out
    h, w = images.shape[-2], images.shape[-1]
    real_dtype = _real_dtype(images, xp)
    wy = interp_matrix(ny, h, y0, xp, real_dtype)
    wx = interp_matrix(nx, w, x0, xp, real_dtype)
    if _is_complex(images, xp):
        wy, wx = _cast(wy, images.dtype, xp), _cast(wx, images.dtype, xp)
    return wy @ images @ wx.swapaxes(-1, -2) if xp is np else wy @ images @ wx.transpose(-1, -2)


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
    fy, fx = (oy - iy).astype(np.float32), (ox - ix).astype(np.float32)
    h, w = obj.shape
    # The (N+1)-wide window must lie inside the object.
    if min(iy.min(), ix.min()) < 0 or iy.max() + n > h - 1 or ix.max() + n > w - 1:
        raise ValueError(f"scan positions reach outside the {h}x{w} object for patch size {n}")
    rows = iy[:, None] + np.arange(n + 1)
    cols = ix[:, None] + np.arange(n + 1)
    window = obj[rows[:, :, None], cols[:, None, :]]  # (B, N+1, N+1)
    fy = fy[:, None, None]
    fx = fx[:, None, None]
    rows_mixed = (1 - fy) * window[:, :-1, :] + fy * window[:, 1:, :]
    return ((1 - fx) * rows_mixed[:, :, :-1] + fx * rows_mixed[:, :, 1:]).astype(obj.dtype)


def _is_complex(a: Any, xp: Any) -> bool:
    return np.iscomplexobj(a) if xp is np else a.is_complex()


def _real_dtype(a: Any, xp: Any) -> Any:
    if xp is np:
        return np.float32 if a.dtype in (np.complex64, np.float32) else np.float64
    if a.dtype in (xp.complex64, xp.float32):
        return xp.float32
    return xp.float64


def _cast(a: Any, dtype: Any, xp: Any) -> Any:
    return a.astype(dtype) if xp is np else a.to(dtype)
