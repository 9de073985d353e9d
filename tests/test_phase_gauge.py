"""benchmarks/phase_gauge.py: angular synchronisation re-phases overlapping patches to one common offset."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from fly64_data.physics import extract_patches

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "phase_gauge.py"


@pytest.fixture(scope="module")
def gauge():
    spec = importlib.util.spec_from_file_location("phase_gauge", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # Dataclasses resolve their string annotations through sys.modules: the script must be there while it loads.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def _object(side: int, rng: np.random.Generator) -> np.ndarray:
    """A fly-like object: smooth amplitude in [0.5, 1] and a smooth phase of about a radian of structure."""
    amplitude = gaussian_filter(rng.standard_normal((side, side)), 4)
    phase = gaussian_filter(rng.standard_normal((side, side)), 6)
    amplitude = 0.5 + 0.5 * (amplitude - amplitude.min()) / np.ptp(amplitude)
    return amplitude * np.exp(1j * 1.5 * phase / np.abs(phase).max())


def _weight(n: int) -> np.ndarray:
    """``|probe|^2 * support`` as the evaluation forms it: a Gaussian probe, the central half of the patch."""
    r = np.arange(n) - n / 2
    probe = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * (n / 6) ** 2))
    support = np.zeros((n, n))
    support[n // 4:3 * n // 4, n // 4:3 * n // 4] = 1
    return probe**2 * support


# 6 x 6 positions take the dense eigensolver, 20 x 20 the sparse one (ARPACK).
@pytest.mark.parametrize("grid", [6, 20])
def test_random_patch_offsets_are_undone_to_a_common_one(gauge, grid: int):
    rng = np.random.default_rng(grid)
    n, step = 32, 8  # the weighted box is 16 px wide: neighbours overlap by half of it
    assert (grid * grid > gauge.DENSE_EIGH_MAX) == (grid == 20), "each eigensolver path is tested"
    centres = 24 + step * np.arange(grid, dtype=np.float64)
    y, x = (c.ravel() for c in np.meshgrid(centres, centres, indexing="ij"))
    truth = extract_patches(_object(int(centres[-1]) + 24, rng), y, x, n)
    offsets = rng.uniform(-np.pi, np.pi, len(y))
    patches = (truth * np.exp(1j * offsets)[:, None, None]).astype(np.complex64)

    phasors = gauge.synchronise(patches, y, x, _weight(n))

    assert phasors.shape == (len(y),)
    np.testing.assert_allclose(np.abs(phasors), 1, atol=1e-9)
    residual = gauge.centred(np.angle(phasors * np.exp(1j * offsets)))
    assert np.abs(residual).max() < 0.01, f"largest residual offset {np.abs(residual).max():.4f} rad"
    # The common offset is chosen so that the added offsets average to 0 on the circle.
    assert abs(np.angle(phasors.mean())) < 1e-9


def test_patches_without_neighbours_keep_their_phase(gauge):
    n = 32
    y = x = np.array([20.0, 120.0])  # 100 px apart: no overlap
    patches = np.ones((2, n, n), np.complex64) * np.exp(1j * np.array([0.3, -1.2]))[:, None, None]
    np.testing.assert_array_equal(gauge.synchronise(patches, y, x, _weight(n)), np.ones(2))
