"""Convention tests: the torch physics layers are the simulator's physics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fly64_data.physics import extract_patches as np_extract
from fly64_data.physics import far_field_intensity
from fly64_train.backends.torch import physics
from fly64_train.data.grouping import make_groups


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def test_torch_extraction_matches_simulator_at_fractional_positions(tiny_sim):
    obj, x, y = tiny_sim["object"], tiny_sim["x"][:6], tiny_sim["y"][:6]
    want = np_extract(obj, y, x, 32)
    got = physics.extract_patches(_t(obj), _t(y), _t(x), 32).numpy()
    assert np.max(np.abs(got - want)) < 1e-5


def test_gs1_predicted_diffraction_of_true_patch_equals_simulator(tiny_sim):
    Y = _t(tiny_sim["Y"][:8])[:, None]
    got = physics.forward_intensity(Y, _t(tiny_sim["probe"]), None, physics.support_mask(32))
    want = tiny_sim["intensity"][:8]
    np.testing.assert_allclose(got[:, 0].numpy(), want, rtol=0, atol=2e-6 * want.max())


def _integer_group(sim, n=32, spacing=6.0):
    """Four patches at integer relative offsets (shared fractional part) around an interior point."""
    obj = sim["object"]
    cy, cx = 64.3, 63.7
    ys = cy + np.array([-1, -1, 1, 1]) * spacing / 2
    xs = cx + np.array([-1, 1, -1, 1]) * spacing / 2 + np.array([0, 0, 0, 4.0])
    patches = np_extract(obj, ys, xs, n)
    pts = np.column_stack([ys, xs])
    offsets = pts - pts.mean(axis=0)
    assert np.allclose(offsets, np.round(offsets))
    intensity = far_field_intensity(sim["probe"] * patches)
    return _t(patches)[None], _t(offsets.astype(np.float32))[None], intensity


def test_merge_then_extract_returns_patches_where_support_covers(tiny_sim):
    patches, offsets, _ = _integer_group(tiny_sim)
    support = physics.support_mask(32)
    out = physics.merge_and_reextract(patches, offsets, support)
    covered = support.bool().expand(patches.shape)
    err = (out - patches).abs()[covered]
    assert float(err.max()) < 1e-6
    # Outside every support the canvas is empty: the merge invents nothing.
    canvas, coverage = physics.merge_patches(patches, offsets, support)
    assert float(canvas.abs()[coverage == 0].max()) == 0.0


def test_a_larger_merge_canvas_gives_the_same_patches(tiny_sim):
    """Training fixes one canvas for all of a job's groups; a batch's own, smaller canvas is the same merge."""
    groups = make_groups(tiny_sim["y"], tiny_sim["x"], 2, 7, seed=5)
    rng = np.random.default_rng(0)
    patches = _t((rng.standard_normal((6, 4, 32, 32)) + 1j * rng.standard_normal((6, 4, 32, 32))).astype(np.complex64))
    offsets = _t(groups.offsets[:6].astype(np.float32))
    weights = physics.support_mask(32)
    own = physics.merge_and_reextract(patches, offsets, weights)
    fixed = physics.canvas_size(_t(groups.offsets), 32) + 10
    assert fixed > physics.canvas_size(offsets, 32)
    torch.testing.assert_close(physics.merge_and_reextract(patches, offsets, weights, fixed), own,
                               rtol=0, atol=1e-6)


def test_merge_weights_identical_in_numerator_and_denominator(tiny_sim):
    # A constant object merges to exactly that constant wherever anything covers, even at
    # fractional offsets: only identical weights above and below the line guarantee it.
    patches = torch.full((1, 4, 32, 32), 0.7 + 0.2j, dtype=torch.complex64)
    offsets = torch.tensor([[[-3.3, -2.6], [-3.3, 3.4], [2.7, -2.6], [3.9, 1.8]]])
    canvas, coverage = physics.merge_patches(patches, offsets, physics.support_mask(32))
    inside = coverage > 1e-3
    assert float((canvas[inside] - (0.7 + 0.2j)).abs().max()) < 1e-5


def test_gs2_predicted_diffraction_of_true_patches_equals_simulator(tiny_sim):
    patches, offsets, want = _integer_group(tiny_sim)
    probe = _t(tiny_sim["probe"])
    # Full-frame support: the merge is the identity on consistent patches, to float precision.
    full = torch.ones(32, 32)
    got = physics.forward_intensity(patches, probe, offsets, full)[0].numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6 * want.max())
    # The model's central N/2 support: only the probe's faint tail outside it is lost.
    got_half = physics.forward_intensity(patches, probe, offsets, physics.support_mask(32))[0].numpy()
    rel = np.linalg.norm(got_half - want) / np.linalg.norm(want)
    assert rel < 0.005


def test_gs2_fractional_offsets_within_stated_tolerance(tiny_sim):
    # Bilinear placement then re-extraction at a fractional offset smooths by one
    # tent kernel per axis; on this band-limited object that costs < 1.5% (L2, relative; measured 0.7%).
    groups = make_groups(tiny_sim["y"], tiny_sim["x"], 2, 7, n_groups=6, seed=123)
    idx = groups.indices
    assert np.any(np.abs(groups.offsets - np.round(groups.offsets)) > 0.05)
    patches = _t(tiny_sim["Y"][idx])
    offsets = _t(groups.offsets.astype(np.float32))
    got = physics.forward_intensity(patches, _t(tiny_sim["probe"]), offsets, torch.ones(32, 32)).numpy()
    want = tiny_sim["intensity"][idx]
    rel = np.linalg.norm(got - want) / np.linalg.norm(want)
    assert rel < 0.015


def _loss_at(sim, obj_patches, offsets=None, support=None):
    probe = _t(sim["probe"])
    support = torch.ones(32, 32) if support is None else support
    diffraction = torch.sqrt(torch.as_tensor(sim["intensity_group"], dtype=torch.float32))
    intensity = physics.forward_intensity(obj_patches, probe, offsets, support)
    return physics.poisson_nll(intensity, diffraction, sim["scale"])


@pytest.mark.parametrize("gridsize", [1, 2])
def test_loss_is_minimal_at_true_object_on_noiseless_data(tiny_sim, gridsize):
    if gridsize == 1:
        truth, offsets = _t(tiny_sim["Y"][:4])[:, None], None
        intensity = tiny_sim["intensity"][:4][:, None]
    else:
        truth, offsets, intensity = _integer_group(tiny_sim)
        intensity = intensity[None]
    sim = {**tiny_sim, "intensity_group": intensity}
    truth = truth.clone().requires_grad_(True)
    at_truth = _loss_at(sim, truth, offsets)
    (grad,) = torch.autograd.grad(at_truth, truth)
    # Stationary point: the gradient at the truth vanishes (relative to a perturbed point's).
    rng = np.random.default_rng(0)
    for amp, ph in ((1.05, 0.0), (0.95, 0.0), (1.0, 0.1)):
        noise = torch.as_tensor(rng.normal(size=truth.shape) * ph, dtype=torch.float32)
        other = (truth.detach() * amp * torch.exp(1j * noise)).requires_grad_(True)
        loss_other = _loss_at(sim, other, offsets)
        (grad_other,) = torch.autograd.grad(loss_other, other)
        assert float(loss_other.detach()) > float(at_truth.detach())
        assert float(grad.abs().max()) < 1e-3 * float(grad_other.abs().max())


def test_poisson_nll_uses_counts_with_fixed_scale():
    intensity = torch.tensor([[0.5, 2.0]])
    diffraction = torch.tensor([[1.0, 1.0]])
    s = 3.0
    lam, k = intensity * s**2, (diffraction * s) ** 2
    want = (lam - k * torch.log(lam + physics.POISSON_EPS)).mean()
    assert torch.allclose(physics.poisson_nll(intensity, diffraction, s), want)
    # Equivalent to torch's Poisson NLL on counts (log-input off): same quantity, independent code.
    ref = torch.nn.functional.poisson_nll_loss(lam, k, log_input=False, eps=physics.POISSON_EPS)
    assert torch.allclose(physics.poisson_nll(intensity, diffraction, s), ref)


def test_photon_split_gives_independent_poisson_parts_that_add_up():
    rate, fraction, scale = 5.0, 0.5, 2.0
    gen = torch.Generator().manual_seed(0)
    counts = torch.poisson(torch.full((400, 500), rate), generator=gen)
    diffraction = torch.sqrt(counts) / scale
    seen, held_out = physics.split_counts(diffraction, scale, fraction, torch.Generator().manual_seed(1))
    first = (seen * scale) ** 2 * fraction
    assert torch.allclose(first + held_out, counts, atol=1e-3)
    k1, k2 = first.double().flatten(), held_out.double().flatten()
    n = k2.numel()
    # Each part is Poisson((f or 1-f) * rate): mean = variance; 5 standard errors of tolerance.
    for part, mean in ((k1, fraction * rate), (k2, (1 - fraction) * rate)):
        assert abs(float(part.mean()) - mean) < 5 * (mean / n) ** 0.5
        assert abs(float(part.var()) - mean) < 5 * mean * (2 / n) ** 0.5
    # ... and the parts are uncorrelated (independent for Poisson counts).
    corr = float(torch.corrcoef(torch.stack([k1, k2]))[0, 1])
    assert abs(corr) < 5 / n**0.5
    # The encoder's input stays on the full pattern's scale.
    assert abs(float(((seen * scale) ** 2).mean()) - rate) < 5 * (rate / fraction / n) ** 0.5
    with pytest.raises(ValueError, match="fraction"):
        physics.split_counts(diffraction, scale, 1.0)


def test_photon_split_loss_prefers_the_true_intensity_to_the_noise():
    # Without the split, the intensity that reproduces the observed counts (noise included) beats the
    # true one: a network that sees the counts can learn to pass their noise through. Scored on an
    # independent part of the photons, the true intensity wins.
    gen = torch.Generator().manual_seed(2)
    scale, fraction = 1.0, 0.5
    true_intensity = torch.rand(200, 32, 32, generator=gen) * 3 + 0.5
    counts = torch.poisson(true_intensity * scale**2, generator=gen)
    diffraction = torch.sqrt(counts) / scale
    assert physics.poisson_nll(counts / scale**2, diffraction, scale) < physics.poisson_nll(
        true_intensity, diffraction, scale)
    seen, held_out = physics.split_counts(diffraction, scale, fraction, gen)
    rate = (1 - fraction) * scale**2
    noise_fit = (seen * scale) ** 2 / scale**2  # the intensity that reproduces the input's counts
    at_truth = physics.poisson_nll_counts(true_intensity, held_out, rate)
    assert at_truth < physics.poisson_nll_counts(noise_fit, held_out, rate)
    for wrong in (0.8, 1.25):
        assert at_truth < physics.poisson_nll_counts(true_intensity * wrong, held_out, rate)
