"""predict_patches: one patch per position, whichever way the patterns are fed to the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fly64_train.backends.torch.loaded_model import TorchLoadedModel
from fly64_train.backends.torch.model import PtychoPINN
from fly64_train.data.reader import open_dataset
from fly64_train.evaluation.predict import predict_patches
from fly64_train.training.model_config import ModelConfig


def _model(tiny_npz, **cfg) -> TorchLoadedModel:
    info = open_dataset(tiny_npz)
    torch.manual_seed(3)
    config = ModelConfig(patch_size=info.patch_size, base_width=4, depth=3, convs_per_level=1, flat_start=False,
                         **cfg)
    return TorchLoadedModel(PtychoPINN(config, info.probe, info.intensity_scale))


@pytest.mark.parametrize("batch_size", [1, 3])
def test_a_shared_encoder_gs2_model_predicts_each_pattern_once_with_the_group_path_s_result(tiny_npz, batch_size):
    model = _model(tiny_npz, gridsize=2, shared_encoder=True)
    assert model.per_pattern
    fast = predict_patches(model, tiny_npz, neighbor_count=7, grouping_seed=123, batch_size=batch_size)
    model.per_pattern = False  # the seed-of-its-group path, the reference
    grouped = predict_patches(model, tiny_npz, neighbor_count=7, grouping_seed=123, batch_size=batch_size)
    assert fast.patches.shape == grouped.patches.shape and np.abs(fast.patches).max() > 0
    assert open_dataset(tiny_npz).n % 4 != 0  # so the padded last row (its copies dropped) is exercised
    np.testing.assert_allclose(fast.patches, grouped.patches, rtol=0, atol=1e-5)


def test_a_multichannel_gs2_model_is_always_fed_real_groups(tiny_npz):
    model = _model(tiny_npz, gridsize=2, shared_encoder=False)
    assert not model.per_pattern
    out = predict_patches(model, tiny_npz, neighbor_count=7, grouping_seed=123, batch_size=4)
    assert np.isfinite(out.patches).all() and out.patches.shape[0] == open_dataset(tiny_npz).n


def test_inference_with_folded_batch_norms_equals_the_trained_model(tiny_npz):
    """The inference copy (BatchNorm folded into its convolutions, channels_last) predicts what the model
    itself predicts in eval mode, with BatchNorm statistics far from the identity."""
    model = _model(tiny_npz, gridsize=1)
    info = open_dataset(tiny_npz)
    diffraction = info.diffraction.read_rows(np.arange(8)).reshape(8, 1, info.patch_size, info.patch_size)
    x = torch.from_numpy(np.ascontiguousarray(diffraction, dtype=np.float32))
    with torch.no_grad():  # running statistics of a few training-mode passes on scaled inputs
        model.model.train()
        for scale in (0.5, 2.0, 4.0):
            model.model.predict_object(x * scale)
        model.model.eval()
        reference = model.model.predict_object(x).numpy()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model._inference.modules())
    got = TorchLoadedModel(model.model).predict_object(diffraction)
    assert np.abs(reference).std() > 0
    np.testing.assert_allclose(got, reference, rtol=0, atol=1e-5)


@pytest.mark.parametrize("gridsize,shared", [(1, False), (2, True), (2, False)])
def test_patterns_given_in_memory_replace_the_files_diffraction(tiny_npz, gridsize, shared):
    # The information score predicts from half of each pattern's photons, held in memory.
    model = _model(tiny_npz, gridsize=gridsize, shared_encoder=shared)
    info = open_dataset(tiny_npz, gridsize, 7)
    own = info.diffraction.read_all()
    kwargs = {"neighbor_count": 7, "grouping_seed": 123, "batch_size": 3}
    from_file = predict_patches(model, tiny_npz, **kwargs)
    np.testing.assert_array_equal(predict_patches(model, tiny_npz, patterns=own, **kwargs).patches,
                                  from_file.patches)
    halved = predict_patches(model, tiny_npz, patterns=own[::-1].copy(), **kwargs)
    assert np.abs(halved.patches - from_file.patches).max() > 1e-3
    with pytest.raises(ValueError, match="patterns to predict from"):
        predict_patches(model, tiny_npz, patterns=own[:2], **kwargs)
