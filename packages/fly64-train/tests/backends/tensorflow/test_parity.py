"""Weight transfer: a torch PtychoPINN's weights in the Keras model give the same objects and intensities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fly64_train.backends.tensorflow.convert import load_torch_state
from fly64_train.backends.tensorflow.model import PtychoPINN as KerasPINN
from fly64_train.backends.torch.model import PtychoPINN as TorchPINN
from fly64_train.training.model_config import ModelConfig


def _torch_model(cfg: ModelConfig, probe: np.ndarray, scale: float) -> TorchPINN:
    torch.manual_seed(3)
    model = TorchPINN(cfg, probe, scale)
    # Non-trivial heads and BatchNorm statistics: the flat start and fresh running stats would
    # let a wrong head transfer or a swapped mean/variance pass unnoticed.
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for module in model.cnn.modules():
            if isinstance(module, torch.nn.Conv2d):
                fan_in = module.weight[0].numel()  # unit gain per layer, as a trained network has
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) / fan_in**0.5)
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.1)
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.copy_(1 + 0.2 * torch.randn(module.weight.shape, generator=gen))
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=gen))
                module.running_mean.copy_(0.1 * torch.randn(module.running_mean.shape, generator=gen))
                module.running_var.copy_(0.5 + torch.rand(module.running_var.shape, generator=gen))
    return model.eval()


@pytest.mark.parametrize("gridsize,shared,merge", [
    (1, True, "support"), (2, True, "support"),
    pytest.param(2, False, "probe_intensity", marks=pytest.mark.slow)],
                         ids=["gs1", "gs2", "gs2-multichannel-probe-weights"])
def test_transferred_weights_predict_same_objects_and_intensities(tiny_sim, gridsize, shared, merge):
    cfg = ModelConfig(patch_size=32, gridsize=gridsize, base_width=4, depth=3, convs_per_level=2,
                      shared_encoder=shared, merge_weights=merge)
    reference = _torch_model(cfg, tiny_sim["probe"], tiny_sim["scale"])
    keras_model = KerasPINN(cfg, tiny_sim["probe"], tiny_sim["scale"])
    load_torch_state(keras_model, {k: v.numpy() for k, v in reference.state_dict().items()})

    c = cfg.group_size
    diffraction = tiny_sim["diffraction"][: 3 * c].reshape(3, c, 32, 32)
    rng = np.random.default_rng(0)
    offsets = (rng.normal(size=(3, c, 2)) * 3).astype(np.float32) if c > 1 else None
    with torch.no_grad():
        obj_t = reference.predict_object(torch.from_numpy(diffraction))
        int_t = reference.forward_intensity(obj_t, None if offsets is None else torch.from_numpy(offsets)).numpy()
    obj_k = keras_model.predict_object(diffraction)
    int_k = keras_model(diffraction, offsets).numpy()

    assert obj_k.dtype == np.complex64 and obj_k.shape == obj_t.shape
    obj_t = obj_t.numpy()
    assert np.abs(obj_t).std() > 0.05  # the CNN does something input-dependent
    np.testing.assert_allclose(obj_k, obj_t, rtol=0, atol=2e-5 * np.abs(obj_t).max())
    np.testing.assert_allclose(int_k, int_t, rtol=0, atol=2e-5 * int_t.max())


@pytest.mark.slow
def test_training_mode_batch_statistics_agree(tiny_sim):
    # In training BatchNorm normalises with the batch's own statistics in both frameworks.
    cfg = ModelConfig(patch_size=32, base_width=4, depth=3, convs_per_level=1)
    reference = _torch_model(cfg, tiny_sim["probe"], tiny_sim["scale"]).train()
    keras_model = KerasPINN(cfg, tiny_sim["probe"], tiny_sim["scale"])
    load_torch_state(keras_model, {k: v.numpy() for k, v in reference.state_dict().items()})
    diffraction = tiny_sim["diffraction"][:8, None]
    with torch.no_grad():
        want = reference.cnn(torch.from_numpy(diffraction)).numpy()
    got = keras_model.cnn(diffraction, training=True).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * np.abs(want).max())


@pytest.mark.slow
def test_transfer_refuses_another_architecture(tiny_sim):
    small = _torch_model(ModelConfig(patch_size=32, base_width=4), tiny_sim["probe"], tiny_sim["scale"])
    wide = KerasPINN(ModelConfig(patch_size=32, base_width=8), tiny_sim["probe"], tiny_sim["scale"])
    with pytest.raises(ValueError, match="do not fit"):
        load_torch_state(wide, {k: v.numpy() for k, v in small.state_dict().items()})
