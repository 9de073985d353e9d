"""The physics convention tests, run once against each backend's physics layers.

Every check is written once against a small adapter (numpy in, numpy out) and
parametrised over the torch and the TensorFlow physics (both are
:mod:`fly64_train.core.physics` on their own tensors): delta image, shifted patch,
Parseval, the noiseless prediction of the true patches equals the simulator's (gs1
and gs2), the merge's identical weights, the loss is stationary at the truth (so
gradients flow through the gather resample in both frameworks), the Poisson NLL in
counts and the photon split's statistics.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pytest
import torch

from fly64_data import physics as conv
from fly64_data.grouping import make_groups
from fly64_data.physics import extract_patches as np_extract
from fly64_data.physics import far_field_intensity as np_far_field_intensity
from fly64_train.core.physics import POISSON_EPS, support_mask

N = 32


@dataclass(frozen=True)
class Backend:
    """One backend's physics, seen through numpy in and out."""

    name: str
    xp: Any
    module: Any
    tensor: Callable[[np.ndarray], Any]
    rng: Callable[[int], Any]
    """The backend's randomness for the count split, from an integer seed."""
    value_and_grad: Callable[[Callable[[Any], Any], np.ndarray], tuple[float, np.ndarray]]
    """``(f(x), df/dx)`` of a real scalar function of one array, through the framework's autodiff."""

    def __call__(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        args = [self.tensor(a) if isinstance(a, np.ndarray) else a for a in args]
        out = getattr(self.module, fn)(*args, **kwargs)
        return tuple(_np(o) for o in out) if isinstance(out, tuple) else _np(out)

    def far_field_intensity(self, psi: np.ndarray) -> np.ndarray:
        return _np(conv.far_field_intensity(self.tensor(psi), xp=self.xp))

    def split(self, diffraction: np.ndarray, scale: float, fraction: float, seed: int) -> tuple[Any, Any]:
        return self("split_counts", diffraction, scale, fraction, self.rng(seed))


def _np(t: Any) -> Any:
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return t if isinstance(t, int | float) else np.array(t)


def _torch_value_and_grad(f: Callable[[Any], Any], x: np.ndarray) -> tuple[float, np.ndarray]:
    x = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(True)
    value = f(x)
    (grad,) = torch.autograd.grad(value, x)
    return float(value.detach()), grad.numpy()


def _torch() -> Backend:
    return Backend("torch", torch, importlib.import_module("fly64_train.backends.torch.physics"),
                   lambda a: torch.from_numpy(np.ascontiguousarray(a)),
                   lambda seed: torch.Generator().manual_seed(seed), _torch_value_and_grad)


@cache
def _tensorflow() -> Backend:
    tf = pytest.importorskip("tensorflow")
    try:  # one thread, as in tests/backends/tensorflow/conftest.py (possible only before TF's runtime starts)
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass

    def value_and_grad(f: Callable[[Any], Any], x: np.ndarray) -> tuple[float, np.ndarray]:
        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = f(x)
        return float(value), tape.gradient(value, x).numpy()

    return Backend("tensorflow", tf, importlib.import_module("fly64_train.backends.tensorflow.physics"),
                   lambda a: tf.constant(np.ascontiguousarray(a)), lambda seed: tf.constant([seed, 0], tf.int64),
                   value_and_grad)


BACKENDS = {"torch": _torch, "tensorflow": _tensorflow}


@pytest.fixture(params=list(BACKENDS))
def be(request) -> Backend:
    return BACKENDS[request.param]()


# -- the far field -----------------------------------------------------------------------------------

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


# -- extraction and the forward model ----------------------------------------------------------------

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
    got = be("forward_intensity", patches, tiny_sim["probe"], None, support_mask(N))[:, 0]
    want = tiny_sim["intensity"]
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6 * want.max())
    # conftest's simulate() sets s so that the mean counts per pattern are the dose, 1e4.
    assert float((got * tiny_sim["scale"] ** 2).sum(axis=(1, 2)).mean()) == pytest.approx(1e4, rel=1e-4)


def _integer_group(sim):
    """Four patches at integer relative offsets (shared fractional part) around an interior point."""
    cy, cx = 64.3, 63.7
    ys = cy + np.array([-1, -1, 1, 1]) * 3.0
    xs = cx + np.array([-1, 1, -1, 1]) * 3.0 + np.array([0, 0, 0, 4.0])
    patches = np_extract(sim["object"], ys, xs, N)
    pts = np.column_stack([ys, xs])
    offsets = pts - pts.mean(axis=0)
    assert np.allclose(offsets, np.round(offsets))
    return patches[None], offsets.astype(np.float32)[None], np_far_field_intensity(sim["probe"] * patches)


def test_gs2_prediction_of_true_patches_equals_simulator(be, tiny_sim):
    patches, offsets, want = _integer_group(tiny_sim)
    # Full-frame support: the merge is the identity on consistent patches, to float precision.
    full = np.ones((N, N), np.float32)
    got = be("forward_intensity", patches, tiny_sim["probe"], offsets, full)[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6 * want.max())
    # The model's central N/2 support: only the probe's faint tail outside it is lost.
    half = be("forward_intensity", patches, tiny_sim["probe"], offsets, support_mask(N))[0]
    assert np.linalg.norm(half - want) / np.linalg.norm(want) < 0.005


def test_gs2_fractional_offsets_within_stated_tolerance(be, tiny_sim):
    # Bilinear placement then re-extraction at a fractional offset smooths by one
    # tent kernel per axis; on this band-limited object that costs < 1.5% (L2, relative; measured 0.7%).
    groups = make_groups(tiny_sim["y"], tiny_sim["x"], 2, 7, n_groups=6, seed=123)
    assert np.any(np.abs(groups.offsets - np.round(groups.offsets)) > 0.05)
    got = be("forward_intensity", tiny_sim["Y"][groups.indices], tiny_sim["probe"],
             groups.offsets.astype(np.float32), np.ones((N, N), np.float32))
    want = tiny_sim["intensity"][groups.indices]
    assert np.linalg.norm(got - want) / np.linalg.norm(want) < 0.015


# -- the gs2 merge -----------------------------------------------------------------------------------

def test_merge_then_extract_returns_patches_where_support_covers(be, tiny_sim):
    patches, offsets, _ = _integer_group(tiny_sim)
    support = support_mask(N)
    out = be("merge_and_reextract", patches, offsets, support)
    covered = np.broadcast_to(support.astype(bool), patches.shape)
    assert np.abs(out - patches)[covered].max() < 1e-6
    # Outside every support the canvas is empty: the merge invents nothing.
    canvas, coverage = be("merge_patches", patches, offsets, support)
    assert np.abs(canvas[coverage == 0]).max() == 0.0


def test_merge_weights_identical_in_numerator_and_denominator(be):
    # A constant object merges to exactly that constant wherever anything covers, even at
    # fractional offsets: only identical weights above and below the line guarantee it.
    patches = np.full((1, 4, N, N), 0.7 + 0.2j, np.complex64)
    offsets = np.array([[[-3.3, -2.6], [-3.3, 3.4], [2.7, -2.6], [3.9, 1.8]]], np.float32)
    canvas, coverage = be("merge_patches", patches, offsets, support_mask(N))
    assert np.abs(canvas[coverage > 1e-3] - (0.7 + 0.2j)).max() < 1e-5
    assert np.abs(canvas[coverage == 0]).max() == 0.0


def test_a_larger_merge_canvas_gives_the_same_patches(be, tiny_sim):
    """Training may fix one canvas for all of a job's groups; a batch's own, smaller canvas is the same merge."""
    groups = make_groups(tiny_sim["y"], tiny_sim["x"], 2, 7, seed=5)
    rng = np.random.default_rng(0)
    patches = (rng.standard_normal((6, 4, N, N)) + 1j * rng.standard_normal((6, 4, N, N))).astype(np.complex64)
    offsets = groups.offsets[:6].astype(np.float32)
    own = be("merge_and_reextract", patches, offsets, support_mask(N))
    fixed = int(be("canvas_size", groups.offsets.astype(np.float32), N)) + 10
    assert fixed > int(be("canvas_size", offsets, N))
    np.testing.assert_allclose(be("merge_and_reextract", patches, offsets, support_mask(N), fixed), own,
                               rtol=0, atol=1e-6)


def test_backends_merge_to_the_same_canvas(tiny_sim):
    groups = make_groups(tiny_sim["y"], tiny_sim["x"], 2, 7, n_groups=5, seed=1)
    patches, offsets = tiny_sim["Y"][groups.indices], groups.offsets.astype(np.float32)
    (ct, wt), (ck, wk) = (make()("merge_patches", patches, offsets, support_mask(N)) for make in BACKENDS.values())
    assert ct.shape == ck.shape
    np.testing.assert_allclose(ck, ct, rtol=0, atol=1e-5 * np.abs(ct).max())
    np.testing.assert_allclose(wk, wt, rtol=0, atol=1e-6 * wt.max())  # float32 rounding


# -- the loss ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("gridsize", [1, 2])
def test_loss_is_minimal_and_stationary_at_true_object_on_noiseless_data(be, tiny_sim, gridsize):
    if gridsize == 1:
        truth, offsets, intensity = tiny_sim["Y"][:4][:, None], None, tiny_sim["intensity"][:4][:, None]
    else:
        truth, offsets, intensity = _integer_group(tiny_sim)
        intensity = intensity[None]
    diffraction = be.tensor(np.sqrt(intensity).astype(np.float32))
    probe, full = be.tensor(tiny_sim["probe"]), be.tensor(np.ones((N, N), np.float32))
    offsets = None if offsets is None else be.tensor(offsets)

    def loss(obj: Any) -> Any:
        predicted = be.module.forward_intensity(obj, probe, offsets, full)
        return be.module.poisson_nll(predicted, diffraction, tiny_sim["scale"])

    at_truth, grad = be.value_and_grad(loss, truth)
    # Stationary point: the gradient at the truth vanishes (relative to a perturbed point's), and
    # a gradient reaches the object patches at all: autodiff flows through the gather resample.
    rng = np.random.default_rng(0)
    for amp, ph in ((1.05, 0.0), (0.95, 0.0), (1.0, 0.1)):
        other = (truth * amp * np.exp(1j * rng.normal(size=truth.shape) * ph)).astype(np.complex64)
        at_other, grad_other = be.value_and_grad(loss, other)
        assert at_other > at_truth
        assert np.abs(grad_other).max() > 0
        assert np.abs(grad).max() < 1e-3 * np.abs(grad_other).max()


def test_poisson_nll_uses_counts_with_fixed_scale(be):
    intensity, diffraction, s = np.array([[0.5, 2.0]], np.float32), np.array([[1.0, 1.0]], np.float32), 3.0
    lam, k = intensity * s**2, (diffraction * s) ** 2
    want = float((lam - k * np.log(lam + POISSON_EPS)).mean())
    assert float(be("poisson_nll", intensity, diffraction, s)) == pytest.approx(want, rel=1e-6)
    # Equivalent to torch's Poisson NLL on counts (log-input off): same quantity, independent code.
    ref = torch.nn.functional.poisson_nll_loss(torch.from_numpy(lam), torch.from_numpy(k), log_input=False,
                                               eps=POISSON_EPS)
    assert float(be("poisson_nll", intensity, diffraction, s)) == pytest.approx(float(ref), rel=1e-6)


# -- the photon split --------------------------------------------------------------------------------

def test_photon_split_gives_independent_poisson_parts_that_add_up(be):
    rate, fraction, scale = 5.0, 0.5, 2.0
    counts = np.random.default_rng(0).poisson(rate, size=(400, 500)).astype(np.float32)
    seen, held_out = be.split(np.sqrt(counts) / scale, scale, fraction, 1)
    first = (seen * scale) ** 2 * fraction
    np.testing.assert_allclose(first + held_out, counts, atol=1e-3)
    k1, k2 = first.astype(np.float64).ravel(), held_out.astype(np.float64).ravel()
    n = k2.size
    # Each part is Poisson((f or 1-f) * rate): mean = variance; 5 standard errors of tolerance.
    for part, mean in ((k1, fraction * rate), (k2, (1 - fraction) * rate)):
        assert abs(part.mean() - mean) < 5 * (mean / n) ** 0.5
        assert abs(part.var() - mean) < 5 * mean * (2 / n) ** 0.5
    # ... and the parts are uncorrelated (independent for Poisson counts).
    assert abs(np.corrcoef(k1, k2)[0, 1]) < 5 / n**0.5
    # The encoder's input stays on the full pattern's scale.
    assert abs(float(((seen * scale) ** 2).mean()) - rate) < 5 * (rate / fraction / n) ** 0.5
    with pytest.raises(ValueError, match="fraction"):
        be.split(counts, scale, 1.0, 0)


def test_photon_split_loss_prefers_the_true_intensity_to_the_noise(be):
    # Without the split, the intensity that reproduces the observed counts (noise included) beats the
    # true one: a network that sees the counts can learn to pass their noise through. Scored on an
    # independent part of the photons, the true intensity wins.
    rng = np.random.default_rng(2)
    scale, fraction = 1.0, 0.5
    true_intensity = (rng.random((200, N, N)) * 3 + 0.5).astype(np.float32)
    counts = rng.poisson(true_intensity * scale**2).astype(np.float32)
    diffraction = np.sqrt(counts) / scale
    assert be("poisson_nll", counts / scale**2, diffraction, scale) < be("poisson_nll", true_intensity,
                                                                          diffraction, scale)
    seen, held_out = be.split(diffraction, scale, fraction, 3)
    rate = (1 - fraction) * scale**2
    noise_fit = ((seen * scale) ** 2 / scale**2).astype(np.float32)  # the intensity that reproduces the input's counts
    at_truth = be("poisson_nll_counts", true_intensity, held_out, rate)
    assert at_truth < be("poisson_nll_counts", noise_fit, held_out, rate)
    for wrong in (0.8, 1.25):
        assert at_truth < be("poisson_nll_counts", true_intensity * np.float32(wrong), held_out, rate)
