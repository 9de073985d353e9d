"""PtychoPINN: a CNN that maps diffraction to object patches, followed by fixed physics.

The CNN (:class:`ObjectCNN`) is an encoder with two decoders: amplitude through
a sigmoid, phase through ``pi * tanh``. It predicts an (N/2) x (N/2) object
patch that is placed in the central support of an N x N frame (zeros
outside). :class:`PtychoPINN` adds the probe and the physics layers so that
the same module both reconstructs (``predict_object``) and simulates
(``forward_intensity``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fly64_train.backends.torch import physics
from fly64_train.training.model_config import ModelConfig


def _conv_block(cin: int, cout: int, count: int, norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(count):
        layers.append(nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=not norm))
        if norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
    return layers


class _Decoder(nn.Sequential):
    def __init__(self, cfg: ModelConfig, channels_in: int) -> None:
        layers: list[nn.Module] = []
        cin = channels_in
        for level in _decoder_levels(cfg):
            cout = cfg.base_width * 2**level
            layers += _conv_block(cin, cout, cfg.convs_per_level, cfg.batch_norm)
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            cin = cout
        layers += _conv_block(cin, cfg.base_width, 1, cfg.batch_norm)
        layers.append(nn.Conv2d(cfg.base_width, cfg.cnn_channels, 3, padding=1))
        super().__init__(*layers)


def _decoder_levels(cfg: ModelConfig) -> list[int]:
    """Width level (channels ``base_width * 2**level``) of each upsampling stage, coarse to fine."""
    return [min(level, cfg.depth - 1) for level in reversed(range(cfg.upsamplings))]


class ObjectCNN(nn.Module):
    """Diffraction amplitudes (B, C, N, N) -> complex object patches (B, C, N, N).

    The input is multiplied by a fixed ``input_scale`` so that activations do
    not depend on the probe's power; the output is zero outside the support.
    """

    def __init__(self, cfg: ModelConfig, input_scale: float = 1.0) -> None:
        super().__init__()
        cfg.check()
        self.cfg = cfg
        enc: list[nn.Module] = []
        cin = cfg.cnn_channels
        for level in range(cfg.depth):
            cout = cfg.base_width * 2**level
            enc += _conv_block(cin, cout, cfg.convs_per_level, cfg.batch_norm)
            enc.append(nn.AvgPool2d(2))
            cin = cout
        self.encoder = nn.Sequential(*enc)
        self.amplitude = _Decoder(cfg, cin)
        self.phase = _Decoder(cfg, cin)
        self.register_buffer("input_scale", torch.tensor(float(input_scale)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform weights and zero biases, as in the original PtychoPINN."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        if self.cfg.flat_start:
            for head in (self.amplitude[-1], self.phase[-1]):
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)

    def forward(self, diffraction: torch.Tensor) -> torch.Tensor:
        n, m = self.cfg.patch_size, self.cfg.input_size
        lo = (n - m) // 2
        x = diffraction[..., lo:lo + m, lo:lo + m] * self.input_scale
        batch, channels = x.shape[:2]
        if self.cfg.shared_encoder:
            x = x.reshape(batch * channels, 1, m, m)
        features = self.encoder(x)
        # Under autocast (bf16-mixed) the convolutions run in bf16; the heads' outputs go up to
        # float32 before the complex object is formed (torch.polar has no bf16 kernel).
        amp_logits, phase_logits = self.amplitude(features).float(), self.phase(features).float()
        with full_precision(amp_logits.device.type):
            amp = self.cfg.amplitude_max * torch.sigmoid(amp_logits)
            phase = math.pi * torch.tanh(phase_logits)
            pad = (n - amp.shape[-1]) // 2
            obj = F.pad(torch.polar(amp, phase), (pad, pad, pad, pad))
        return obj.reshape(batch, channels, n, n)


class PtychoPINN(nn.Module):
    """The CNN plus the fixed probe, support and physics of the forward model.

    Parameters
    ----------
    cfg : ModelConfig
    probe : (N, N) complex array
        The probe used by the forward model (fixed, not learned).
    intensity_scale : float
        The dataset's recorded scale ``s`` (counts = s^2 * intensity).
    """

    def __init__(self, cfg: ModelConfig, probe: np.ndarray | torch.Tensor, intensity_scale: float) -> None:
        super().__init__()
        probe_t = torch.as_tensor(np.asarray(probe), dtype=torch.complex64)
        n = cfg.patch_size
        if tuple(probe_t.shape) != (n, n):
            raise ValueError(f"probe shape {tuple(probe_t.shape)} does not match patch_size {n}")
        power = float((probe_t.abs() ** 2).sum())
        if not power > 0:
            raise ValueError("probe is identically zero")
        # |F(P*O)| per pixel is about sqrt(sum |P|^2) / N for |O| ~ 1: scale inputs to O(1).
        self.cnn = ObjectCNN(cfg, input_scale=n / math.sqrt(power))
        self.cfg = cfg
        self.register_buffer("probe", probe_t)
        self.register_buffer("support", physics.support_mask(n, cfg.support_fraction))
        self.register_buffer("intensity_scale", torch.tensor(float(intensity_scale), dtype=torch.float32))
        self.canvas_side: int | None = None
        """Canvas side of the gs2 merge, fixed for a training job from all its groups' offsets
        (:meth:`fix_canvas`). ``None`` sizes each batch's canvas from its offsets, which on a GPU makes
        every step wait for the device to report their maximum. Not saved: it belongs to the data."""

    def predict_object(self, diffraction: torch.Tensor) -> torch.Tensor:
        """Object patches (B, C, N, N) complex, zero outside the central support."""
        return self.cnn(diffraction)

    def fix_canvas(self, offsets: np.ndarray | torch.Tensor) -> None:
        """Size the gs2 merge canvas once for every group whose ``offsets`` (G, C, 2) are given."""
        self.canvas_side = physics.canvas_size(torch.as_tensor(np.asarray(offsets)), self.cfg.patch_size)

    def merge_weights(self) -> torch.Tensor:
        """(N, N) weights of the gs2 merge (see :attr:`ModelConfig.merge_weights`)."""
        if self.cfg.merge_weights == "support":
            return self.support
        intensity = self.probe.abs() ** 2
        return self.support * intensity / intensity.max()

    def forward_intensity(self, obj_patches: torch.Tensor, offsets: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted far-field intensity of given object patches (merging gs2 groups).

        Always complex64/float32, also under autocast: the resampling matmuls and FFTs of
        the physics have no bf16 complex kernels, and photon counts need float32's range.
        """
        with full_precision(obj_patches.device.type):
            offsets = None if offsets is None else offsets.float()
            return physics.forward_intensity(obj_patches.to(torch.complex64), self.probe, offsets,
                                             self.merge_weights(), self.canvas_side)

    def forward(self, diffraction: torch.Tensor, offsets: torch.Tensor | None = None) -> torch.Tensor:
        """Diffraction -> predicted intensity: the self-supervised autoencoder path."""
        return self.forward_intensity(self.predict_object(diffraction), offsets)

    def loss(self, diffraction: torch.Tensor, offsets: torch.Tensor | None = None, count_split: float | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Poisson NLL in counts of the observed ``diffraction`` under the model's prediction.

        With ``count_split`` the photons are split by binomial thinning
        (:func:`fly64_train.backends.torch.physics.split_counts`): the CNN sees the ``count_split``
        part and the loss scores the prediction on the other, independent part.
        """
        diffraction = diffraction.float()
        if count_split is None:
            predicted = self(diffraction, offsets)
            with full_precision(diffraction.device.type):
                return physics.poisson_nll(predicted, diffraction, self.intensity_scale)
        with full_precision(diffraction.device.type):
            seen, held_out = physics.split_counts(diffraction, self.intensity_scale, count_split, generator)
        predicted = self(seen, offsets)
        with full_precision(diffraction.device.type):
            rate_scale = (1.0 - count_split) * self.intensity_scale**2
            return physics.poisson_nll_counts(predicted, held_out, rate_scale)


def full_precision(device_type: str) -> torch.autocast:
    """Autocast switched off: what runs inside stays float32/complex64 under ``bf16-mixed``."""
    return torch.autocast(device_type=device_type, enabled=False)


def gflop_per_group(cfg: ModelConfig) -> float:
    """Forward GFLOP of the CNN for one group (2 per multiply-add, convolutions only).

    Counted from the layers themselves (a forward pass on zeros with hooks), so it follows
    any architecture change.
    """
    cnn = ObjectCNN(cfg)
    total = [0.0]

    def hook(module: nn.Conv2d, _inputs: Any, output: torch.Tensor) -> None:
        k = module.kernel_size[0] * module.kernel_size[1]
        total[0] += 2.0 * k * module.in_channels * output.numel()  # one group in: numel spans its patterns

    handles = [m.register_forward_hook(hook) for m in cnn.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            cnn.eval()(torch.zeros(1, cfg.group_size, cfg.patch_size, cfg.patch_size))
    finally:
        for h in handles:
            h.remove()
    return total[0] / 1e9
