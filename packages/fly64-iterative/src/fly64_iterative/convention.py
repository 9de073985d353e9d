"""How a DATA-001 split is handed to pty-chi: positions, probe scale and counts (pinned by a parity test).

The simulator (:mod:`fly64_data.physics`) and pty-chi write the same physics in
different conventions; these three conversions are the whole difference, and
``tests/test_parity.py`` pins them at once: pty-chi's forward model of the
*true* object reproduces the simulator's noiseless counts to float32 rounding.

Positions
    The simulator's patch centred at ``c`` starts at pixel ``c - N/2``. pty-chi
    (``determine_position_origin_coords_by=SUPPORT``, its default) adds the
    origin ``round(H/2) - 0.5`` to a position and starts the patch at
    ``round(p) + origin - (N - 1)/2`` with the sub-pixel rest moved onto the
    probe. So ``p = c - round(H/2)``: a patch centre relative to the object's
    centre pixel, per axis.
Probe scale
    The simulator's far field is the unitary ``fft2(norm="ortho")`` and its
    counts are ``s^2 |F|^2`` (``s`` = ``intensity_scale``); pty-chi's is the
    unnormalised ``fft2``, larger by ``sqrt(H W) = N``. The probe handed to
    pty-chi is therefore ``P * s / N`` (times ``sqrt(f)`` for a photon share
    ``f`` of the counts), and the reconstructed object is on the truth's scale.
Counts
    pty-chi fits intensities: ``k = (s * diffraction)^2`` (DATA-001 stores
    ``sqrt(k) / s``), DC-centred, which pty-chi takes with ``fft_shift=True``.
Sub-pixel positions
    pty-chi moves the probe by a Fourier shift; the simulator interpolates the
    object bilinearly. The two agree exactly at whole-pixel positions (the
    parity test) and differ at fractional ones by the bilinear kernel's blur
    (measured in docs/study.md, Phase F): a model error of the simulator that
    pty-chi, like any Fourier-shift engine, does not share.
"""

from __future__ import annotations

import numpy as np


def ptychi_positions(ycoords: np.ndarray, xcoords: np.ndarray,
                     object_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """pty-chi's ``(position_y_px, position_x_px)`` of DATA-001 patch centres in an object of ``object_shape``."""
    h, w = object_shape
    y = np.asarray(ycoords, dtype=np.float64) - round(h / 2)
    x = np.asarray(xcoords, dtype=np.float64) - round(w / 2)
    return y, x


def ptychi_probe(probe: np.ndarray, intensity_scale: float, photon_share: float = 1.0) -> np.ndarray:
    """The ``(1, 1, N, N)`` complex64 probe for pty-chi: ``P * s * sqrt(photon_share) / sqrt(N_y N_x)``."""
    probe = np.asarray(probe)
    if probe.ndim != 2:
        raise ValueError(f"probe must be a 2-D array, got shape {probe.shape}")
    scale = float(intensity_scale) * np.sqrt(photon_share) / np.sqrt(probe.shape[0] * probe.shape[1])
    return (probe.astype(np.complex128) * scale).astype(np.complex64)[None, None]


def counts_of(diffraction: np.ndarray, intensity_scale: float) -> np.ndarray:
    """Recorded photon counts ``(s * diffraction)^2`` as float32, DC-centred as stored."""
    return np.square(np.asarray(diffraction, dtype=np.float64) * float(intensity_scale)).astype(np.float32)
