"""Poisson negative log-likelihood of an object on recorded counts, through the simulator's forward model."""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from fly64_data import physics

#: Floor of the predicted rate inside the log, in photons (the training loss's POISSON_EPS): a pixel
#: predicted dark that recorded photons costs a large but finite amount instead of infinity.
RATE_FLOOR = 1e-8


def poisson_nll(obj: np.ndarray, counts: np.ndarray, *, probe: np.ndarray, ycoords: np.ndarray,
                xcoords: np.ndarray, intensity_scale: float, fraction: float = 1.0,
                batch_size: int = 64) -> np.ndarray:
    """Per-pattern Poisson NLL (nats) of ``counts`` under the object ``obj``.

    The forward model is the simulator's (:mod:`fly64_data.physics`): the patch
    of ``obj`` at each position (bilinear, patch pixel ``[N/2, N/2]`` at the
    position), times ``probe``, unitary far field; the predicted counts are
    ``lambda = fraction * intensity_scale^2 * |far_field(P * O_j)|^2`` (``fraction``
    the share of the photons ``counts`` holds, e.g. 0.5 for one half of
    :func:`split_counts`). The NLL is the full one,
    ``sum_pixels lambda - k log(lambda + RATE_FLOOR) + log k!``, in float64.

    Parameters
    ----------
    obj : (H, W) complex array in the positions' object frame; every patch must lie inside it
    counts : (n, N, N) photon counts, one pattern per position
    probe : (N, N) complex probe
    ycoords, xcoords : (n,) patch centres in object pixels

    Returns
    -------
    (n,) float64, the NLL of each pattern
    """
    obj, counts, probe = np.asarray(obj), np.asarray(counts), np.asarray(probe)
    ycoords, xcoords = np.asarray(ycoords, np.float64), np.asarray(xcoords, np.float64)
    if obj.ndim != 2:
        raise ValueError(f"poisson_nll: obj must be a 2-D object, got shape {obj.shape}")
    if counts.ndim != 3 or counts.shape[1:] != probe.shape or probe.ndim != 2:
        raise ValueError(f"poisson_nll: counts must be (n, N, N) with the probe's (N, N), got {counts.shape} "
                         f"and {probe.shape}")
    if ycoords.shape != (counts.shape[0],) or xcoords.shape != (counts.shape[0],):
        raise ValueError(f"poisson_nll: ycoords and xcoords need one entry per pattern ({counts.shape[0]}), got "
                         f"{ycoords.shape} and {xcoords.shape}")
    if not np.all(np.isfinite(obj)):
        raise ValueError("poisson_nll: obj holds non-finite values; fill pixels you did not reconstruct first")
    if not 0 < fraction <= 1:
        raise ValueError(f"poisson_nll: fraction must be in (0, 1], got {fraction}")
    n = probe.shape[0]
    rate = fraction * float(intensity_scale) ** 2
    obj = obj.astype(np.complex128)
    probe = probe.astype(np.complex128)
    out = np.empty(counts.shape[0], np.float64)
    for start in range(0, counts.shape[0], batch_size):
        stop = min(start + batch_size, counts.shape[0])
        patches = physics.extract_patches(obj, ycoords[start:stop], xcoords[start:stop], n)
        lam = rate * physics.far_field_intensity(probe * patches)
        k = counts[start:stop].astype(np.float64)
        nll = lam - k * np.log(lam + RATE_FLOOR) + gammaln(k + 1.0)
        out[start:stop] = nll.sum(axis=(-2, -1))
    return out
