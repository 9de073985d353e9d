"""The CNN's shape conventions: flat start, diffraction crop, FLOP count."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fly64_data.sample import synthetic_probe
from fly64_train.backends.torch import physics
from fly64_train.backends.torch.model import ObjectCNN, PtychoPINN, gflop_per_group
from fly64_train.training.model_config import ModelConfig


def test_untrained_model_predicts_the_flat_object_whose_exit_wave_is_the_probe():
    torch.manual_seed(0)
    probe = synthetic_probe(32)
    model = PtychoPINN(ModelConfig(patch_size=32, base_width=4), probe, 3.5).eval()
    x = torch.rand(3, 1, 32, 32) * 2
    with torch.no_grad():
        obj = model.predict_object(x)
        intensity = model(x)
    assert torch.equal(obj, model.support.to(obj.dtype).expand_as(obj))
    expected = physics.diffracted_intensity(model.support.to(torch.complex64), model.probe)
    assert torch.allclose(intensity, expected.expand_as(intensity), rtol=1e-6, atol=1e-9)


def test_encoder_sees_only_the_central_crop():
    torch.manual_seed(0)
    cfg = ModelConfig(patch_size=32, base_width=4, flat_start=False)
    assert cfg.input_size == 16
    cnn = ObjectCNN(cfg).eval()
    x = torch.rand(2, 1, 32, 32)
    y = x.clone()
    y[..., :8, :] = 5.0
    y[..., :, 24:] = -1.0
    with torch.no_grad():
        a, b = cnn(x), cnn(y)
        y[..., 12, 12] += 1.0
        c = cnn(y)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("kw", [dict(input_fraction=0.3), dict(input_fraction=0.25, depth=4)])
def test_crops_the_decoders_cannot_serve_are_refused(kw):
    with pytest.raises(ValueError, match="input_fraction"):
        ModelConfig(patch_size=32, **kw).check()


def test_gflop_count_follows_the_layers():
    full = ModelConfig(input_fraction=1.0, flat_start=False)
    # The pre-crop architecture at N = 128: 0.403 GFLOP per gs1 group (documented in docs/training.md).
    assert gflop_per_group(full) == pytest.approx(0.403, abs=0.001)
    assert gflop_per_group(ModelConfig()) < gflop_per_group(full)


def test_gs2_merge_with_probe_intensity_weights_keeps_the_simulator_convention(tiny_sim):
    # True patches are consistent, so the merge returns them wherever some probe lit the canvas:
    # the predicted diffraction equals the simulator's up to bilinear smoothing at fractional
    # offsets and the probe's faint tail outside the N/2 support (the physics tests' bound).
    from fly64_data.grouping import make_groups

    groups = make_groups(tiny_sim["y"], tiny_sim["x"], 2, 7, n_groups=6, seed=123)
    patches = torch.as_tensor(tiny_sim["Y"][groups.indices])
    want = tiny_sim["intensity"][groups.indices]
    errors = {}
    for weights in ("probe_intensity", "support"):
        model = PtychoPINN(ModelConfig(patch_size=32, gridsize=2, base_width=4, merge_weights=weights),
                           tiny_sim["probe"], 1.0)
        w = model.merge_weights()
        assert float(w.max()) == pytest.approx(1.0) and float(w[model.support == 0].abs().max()) == 0.0
        offsets = torch.as_tensor(groups.offsets.astype(np.float32))
        got = model.forward_intensity(patches, offsets).detach().numpy()
        errors[weights] = np.linalg.norm(got - want) / np.linalg.norm(want)
    assert all(e < 0.015 for e in errors.values()), errors


def test_unknown_merge_weights_are_refused():
    with pytest.raises(ValueError, match="merge_weights"):
        ModelConfig(merge_weights="uniform").check()


def test_shared_encoder_predicts_each_pattern_of_a_group_on_its_own():
    torch.manual_seed(0)
    cfg = ModelConfig(patch_size=32, gridsize=2, base_width=4, flat_start=False)
    cnn = ObjectCNN(cfg).eval()
    x = torch.rand(2, 4, 32, 32)
    with torch.no_grad():
        out = cnn(x)
        alone = cnn(x[:, 2:3].expand(2, 4, 32, 32).contiguous())
        swapped = cnn(x[:, [1, 0, 3, 2]])
    assert out.shape == (2, 4, 32, 32)
    torch.testing.assert_close(alone[:, 0], out[:, 2])
    torch.testing.assert_close(swapped, out[:, [1, 0, 3, 2]])
    # The multi-channel variant mixes the group's patterns.
    mixed = ObjectCNN(ModelConfig(patch_size=32, gridsize=2, base_width=4, flat_start=False,
                                  shared_encoder=False)).eval()
    with torch.no_grad():
        assert not torch.allclose(mixed(x[:, [1, 0, 3, 2]]), mixed(x)[:, [1, 0, 3, 2]])


def test_gflop_count_covers_every_pattern_of_a_group():
    one = gflop_per_group(ModelConfig())
    assert gflop_per_group(ModelConfig(gridsize=2)) == pytest.approx(4 * one)


def test_default_step_holds_16_patterns_whatever_the_gridsize():
    from fly64_train.training.config import TrainConfig

    assert TrainConfig(train_path="t.npz", job_dir="j").groups_per_step == 16
    assert TrainConfig(train_path="t.npz", job_dir="j", gridsize=2).groups_per_step == 4
    assert TrainConfig(train_path="t.npz", job_dir="j", gridsize=2, batch_size=7).groups_per_step == 7
    assert TrainConfig(train_path="t.npz", job_dir="j").max_time == "00:00:12:00"
