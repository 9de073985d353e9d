"""The physics convention checks, run against both backends' physics layers.

Each check is written once against a small adapter and parametrised over the torch
physics (:mod:`fly64_train.backends.torch.physics`) and its TensorFlow twin: delta image, shifted
patch, Parseval, mean counts = dose, the noiseless prediction of the true patches
equals the simulator's (gs1 and gs2), the merge's identical weights, the Poisson NLL
in counts and the photon split's statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
import torch

from fly64_data import physics as conv
from fly64_data.physics import extract_patches as np_extract
from fly64_data.physics import far_field_intensity as np_far_field_intensity
from fly64_train.backends.tensorflow import physics as tf_physics
from fly64_train.backends.torch import physics as torch_physics
from fly64_train.data.grouping import make_groups

N = 32


@dataclass(frozen=True)
class Backend:
    """One backend's physics, seen through numpy in and out."""

    name: str
    module: Any
    tensor: Callable[[np.ndarray], Any]
    split: Callable[[Any, float, float, int], tuple[Any, Any]]

    def __call__(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        args = [self.tensor(a) if isinstance(a, np.ndarray) else a for a in args]
        out = getattr(self.module, fn)(*args, **kwargs)
        return tuple(_np(o) for o in out) if isinstance(out, tuple) else _np(out)

    def far_field_intensity(self, psi: np.ndarray) -> np.ndarray:
        if self.name == "torch":
            return _np(conv.far_field_intensity(self.tensor(psi), xp=torch))
        return _np(tf_physics.far_field_intensity(self.tensor(psi)))


def _np(t: Any) -> np.ndarray:
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.array(t)


def _torch_split(d: Any, s: float, f: float, seed: int) -> tuple[Any, Any]:
    return torch_physics.split_counts(d, s, f, torch.Generator().manual_seed(seed))


def _tf_split(d: Any, s: float, f: float, seed: int) -> tuple[Any, Any]:
    return tf_physics.split_counts(d, s, f, tf.constant([seed, 0], tf.int64))


BACKENDS = [
    Backend("torch", torch_physics, lambda a: torch.from_numpy(np.ascontiguousarray(a)), _torch_split),
    Backend("tensorflow", tf_physics, lambda a: tf.constant(np.ascontiguousarray(a)), _tf_split),
]


@pytest.fixture(params=BACKENDS, ids=lambda b: b.name)
def be(request) -> Backend:
    return request.param


def test_delta_exit_wave_gives_flat_far_field(be):
    psi = np.zeros((N, N), np.complex64)
    psi[3, 7] = 2.0
    np.testing.assert_allclose(be.far_field_intensity(psi), 4.0 / N**2, rtol=1e-5)


def test_constant_exit_wave_lands_on_dc_pixel(be):
    intensity = be.far_field_intensity(np.ones((N, N), np.complex64))
    assert intensity[N // 2, N // 2] == pytest.approx(N * N, rel=1e-6)
    intensity[N // 2, N // 2] = 0
    assert np.abs(intensity).max() < 1e-6


def test_parseval(be):
    rng = np.random.default_rng(0)
    psi = (rng.standard_normal((5, N, N)) + 1j * rng.standard_normal((5, N, N))).astype(np.complex64)
    np.testing.assert_allclose(be.far_field_intensity(psi).sum(axis=(1, 2)), (np.abs(psi) ** 2).sum(axis=(1, 2)),
                               rtol=1e-5)
    np.testing.assert_allclose(be.far_field_intensity(psi), np_far_field_intensity(psi), rtol=0, atol=1e-4)


def test_shifted_delta_object_lands_where_the_convention_says(be):
    obj = np.zeros((100, 120), np.complex64)
    obj[40, 70] = 1.0
    patch = be("extract_patches", obj, np.array([45.0]), np.array([60.0]), N)[0]
    assert np.unravel_index(np.abs(patch).argmax(), patch.shape) == (N // 2 - 5, N // 2 + 10)
    assert np.abs(patch).sum() == pytest.approx(1.0)
    half = np.abs(be("extract_patches", obj, np.array([40.0]), np.array([69.5]), N)[0])
    assert half[N // 2, N // 2] == pytest.approx(0.5) and half[N // 2, N // 2 + 1] == pytest.approx(0.5)


def test_extraction_matches_simulator_at_fractional_positions(be, tiny_sim):
    obj, x, y = tiny_sim["object"], tiny_sim["x"][:6], tiny_sim["y"][:6]
    got = be("extract_patches", obj, y, x, N)
    assert np.max(np.abs(got - np_extract(obj, y, x, N))) < 1e-5


def test_gs1_prediction_of_true_patches_equals_simulator_and_mean_counts_equal_dose(be, tiny_sim):
    patches = tiny_sim["Y"][:, None]
    got = be("forward_intensity", patches, tiny_sim["probe"], None, torch_physics.support_mask(N).numpy())[:, 0]
    want = tiny_sim["intensity"]
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6 * want.max())
    # conftest's simulate() sets s so that the mean counts per pattern are the dose, 1e4.
    assert float((got * tiny_sim["scale"] ** 2).sum(axis=(1, 2)).mean()) == pytest.approx(1e4, rel=1e-4)


def _integer_group(sim):
    """Four patches at integer relative offsets around an interior point (as in test_physics)."""
    cy, cx = 64.3, 63.7
    ys = cy + np.array([-1, -1, 1, 1]) * 3.0
    xs = cx + np.array([-1, 1, -1, 1]) * 3.0 + np.array([0, 0, 0, 4.0])
    patches = np_extract(sim["object"], ys, xs, N)
    pts = np.column_stack([ys, xs])
    offsets = (pts - pts.mean(axis=0)).astype(np.float32)
    return patches[None], offsets[None], np_far_field_intensity(sim["probe"] * patches)


def test_gs2_prediction_of_true_patches_equals_simulator(be, tiny_sim):
    patches, offsets, want = _integer_group(tiny_sim)
    full = np.ones((N, N), np.float32)
    got = be("forward_intensity", patches, tiny_sim["probe"], offsets, full)[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6 * want.max())
    half = be("forward_intensity", patches, tiny_sim["probe"], offsets, torch_physics.support_mask(N).numpy())[0]
    assert np.linalg.norm(half - want) / np.linalg.norm(want) < 0.005


def test_gs2_fractional_offsets_within_stated_tolerance(be, tiny_sim):
    groups = make_groups(tiny_sim["y"], tiny_sim["x"], 2, 7, n_groups=6, seed=123)
    got = be("forward_intensity", tiny_sim["Y"][groups.indices], tiny_sim["probe"],
             groups.offsets.astype(np.float32), np.ones((N, N), np.float32))
    want = tiny_sim["intensity"][groups.indices]
    assert np.linalg.norm(got - want) / np.linalg.norm(want) < 0.015


def test_merge_weights_identical_in_numerator_and_denominator(be):
    patches = np.full((1, 4, N, N), 0.7 + 0.2j, np.complex64)
    offsets = np.array([[[-3.3, -2.6], [-3.3, 3.4], [2.7, -2.6], [3.9, 1.8]]], np.float32)
    canvas, coverage = be("merge_patches", patches, offsets, torch_physics.support_mask(N).numpy())
    assert np.abs(canvas[coverage > 1e-3] - (0.7 + 0.2j)).max() < 1e-5
    assert np.abs(canvas[coverage == 0]).max() == 0.0


def test_backends_merge_to_the_same_canvas(tiny_sim):
    groups = make_groups(tiny_sim["y"], tiny_sim["x"], 2, 7, n_groups=5, seed=1)
    patches, offsets = tiny_sim["Y"][groups.indices], groups.offsets.astype(np.float32)
    weights = torch_physics.support_mask(N).numpy()
    (ct, wt), (ck, wk) = (b("merge_patches", patches, offsets, weights) for b in BACKENDS)
    assert ct.shape == ck.shape
    np.testing.assert_allclose(ck, ct, rtol=0, atol=1e-5 * np.abs(ct).max())
    np.testing.assert_allclose(wk, wt, rtol=0, atol=1e-6 * wt.max())  # float32 rounding


def test_poisson_nll_uses_counts_with_fixed_scale(be):
    intensity, diffraction, s = np.array([[0.5, 2.0]], np.float32), np.array([[1.0, 1.0]], np.float32), 3.0
    lam, k = intensity * s**2, (diffraction * s) ** 2
    want = float((lam - k * np.log(lam + 1e-8)).mean())
    assert float(be("poisson_nll", intensity, diffraction, s)) == pytest.approx(want, rel=1e-6)


def test_photon_split_gives_independent_poisson_parts_that_add_up(be):
    rate, fraction, scale = 5.0, 0.5, 2.0
    counts = np.random.default_rng(0).poisson(rate, size=(400, 500)).astype(np.float32)
    seen, held_out = (_np(t) for t in be.split(be.tensor(np.sqrt(counts) / scale), scale, fraction, 1))
    first = (seen * scale) ** 2 * fraction
    np.testing.assert_allclose(first + held_out, counts, atol=1e-3)
    k1, k2 = first.astype(np.float64).ravel(), held_out.astype(np.float64).ravel()
    n = k2.size
    for part, mean in ((k1, fraction * rate), (k2, (1 - fraction) * rate)):
        assert abs(part.mean() - mean) < 5 * (mean / n) ** 0.5
        assert abs(part.var() - mean) < 5 * mean * (2 / n) ** 0.5
    assert abs(np.corrcoef(k1, k2)[0, 1]) < 5 / n**0.5
    with pytest.raises(ValueError, match="fraction"):
        be.split(be.tensor(counts), scale, 1.0, 0)
