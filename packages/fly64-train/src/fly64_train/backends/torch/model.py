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
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fly64_train import physics


@dataclass
class ModelConfig:
    """Shape of a PtychoPINN model.

    Attributes
    ----------
    patch_size : int
        N, the diffraction and object patch side (a multiple of ``2**depth``).
    gridsize : int
        1 or 2; the model sees and predicts ``gridsize**2`` patterns per group.
    base_width : int
        Channels of the first encoder level; level ``i`` has ``base_width * 2**i``.
    depth : int
        Number of 2x poolings in the encoder (the decoders upsample ``depth - 1``
        times, ending at N/2).
    convs_per_level : int
        3x3 convolutions per encoder/decoder level.
    support_fraction : float
        Side of the predicted object support as a fraction of N.
    amplitude_max : float
        Amplitude is ``amplitude_max * sigmoid(.)``. A transmission object is
        close to 1 wherever the beam meets vacuum; with a plain sigmoid (max 1)
        training drives those logits to saturation, gradients vanish and the
        decoder collapses to a constant. 2 puts 1 at the sigmoid's steepest point.
    batch_norm : bool
        BatchNorm after each hidden convolution. With Glorot init and ReLU the
        signal variance halves per layer; without normalisation the input's
        contribution vanishes under the biases and the CNN predicts one
        object for every pattern.
    input_fraction : float
        The encoder sees the central ``input_fraction * N`` square of the
        diffraction amplitudes (the far field of a probe filling about a third
        of the frame puts > 99.99 % of the counts in the central N/2). The loss
        still uses the full N x N pattern. 1.0 feeds the whole frame.
    flat_start : bool
        The last convolution of each decoder starts at zero (weights and
        bias), so the untrained model predicts the flat object 1 (amplitude
        ``amplitude_max * sigmoid(0)``, phase 0) whose exit wave is the probe:
        the usual start of ptychographic reconstruction. Hidden layers keep
        their Glorot init.
    merge_weights : str
        gs2 merge weights (the same in numerator and denominator):
        ``"probe_intensity"`` = ``|P|^2 / max |P|^2`` on the support, so each
        patch speaks for the object where its probe lit it (a neighbour's
        unlit rim, which its own pattern hardly constrains, does not dilute a
        patch's lit core); ``"support"`` = the plain N/2 support (default).
    shared_encoder : bool
        For gridsize > 1, apply one single-pattern CNN to each pattern of a
        group (weights shared across the group) instead of one CNN with
        ``gridsize**2`` input and output channels. The group's patterns still
        meet in the physics (the merge). A multi-channel CNN must route each
        pattern through a bottleneck sized for one pattern and learn from
        each group position separately; the shared one learns from every
        pattern with the same weights.
    """

    patch_size: int = 128
    gridsize: int = 1
    base_width: int = 16
    depth: int = 3
    convs_per_level: int = 2
    support_fraction: float = 0.5
    amplitude_max: float = 2.0
    batch_norm: bool = True
    input_fraction: float = 0.5
    flat_start: bool = True
    merge_weights: str = "support"
    shared_encoder: bool = True

    #: Values of fields added after format 1.0 bundles were written, for manifests that lack them.
    LEGACY: ClassVar[dict[str, Any]] = {"input_fraction": 1.0, "flat_start": False, "merge_weights": "support",
                                        "shared_encoder": False}
    MERGE_WEIGHTS: ClassVar[tuple[str, ...]] = ("probe_intensity", "support")

    @property
    def group_size(self) -> int:
        return self.gridsize**2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def cnn_channels(self) -> int:
        """Input/output channels of the CNN: 1 with a shared encoder, else ``gridsize**2``."""
        return 1 if self.shared_encoder else self.group_size

    @property
    def input_size(self) -> int:
        """Side of the diffraction crop the encoder sees."""
        return int(round(self.input_fraction * self.patch_size))

    @property
    def upsamplings(self) -> int:
        """Decoder 2x upsamplings from the encoder's output (input_size / 2**depth) to N/2."""
        ratio = (self.patch_size // 2) * 2**self.depth / self.input_size
        return int(round(math.log2(ratio))) if ratio >= 1 else -1

    @classmethod
    def from_dict(cls, data: dict[str, Any], legacy: bool = False) -> ModelConfig:
        """Config from a dict. Missing fields take the defaults, or with ``legacy=True`` (a
        bundle's recorded config) the :attr:`LEGACY` values of the architecture it was saved with."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config field(s): {', '.join(sorted(unknown))}")
        return cls(**{**cls.LEGACY, **data}) if legacy else cls(**data)

    def check(self) -> None:
        n, d = self.patch_size, self.depth
        if d < 1 or n % (2**d):
            raise ValueError(f"patch_size {n} must be divisible by 2**depth = {2**d}")
        if abs(self.support_fraction - 0.5) > 1e-12:
            raise ValueError(f"support_fraction must be 0.5 (the decoders end at N/2), got {self.support_fraction}")
        if self.gridsize < 1 or self.base_width < 1 or self.convs_per_level < 1:
            raise ValueError("gridsize, base_width and convs_per_level must be >= 1")
        if self.merge_weights not in self.MERGE_WEIGHTS:
            raise ValueError(f"merge_weights must be one of {self.MERGE_WEIGHTS}, got {self.merge_weights!r}")
        m = self.input_size
        if not 0 < self.input_fraction <= 1 or m % 2 != n % 2 or m % (2**d):
            raise ValueError(f"input_fraction {self.input_fraction} gives a {m}-pixel crop of N = {n}: it must be "
                             f"in (0, 1], centred (same parity as N) and divisible by 2**depth = {2**d}")
        if self.upsamplings < 0 or 2 ** self.upsamplings * (m // 2**d) != n // 2:
            raise ValueError(f"the decoders cannot reach N/2 = {n // 2} from a {m // 2**d}-pixel encoding "
                             f"by 2x upsampling (input_fraction {self.input_fraction}, depth {d})")


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
        amp = self.cfg.amplitude_max * torch.sigmoid(self.amplitude(features))
        phase = math.pi * torch.tanh(self.phase(features))
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

    def predict_object(self, diffraction: torch.Tensor) -> torch.Tensor:
        """Object patches (B, C, N, N) complex, zero outside the central support."""
        return self.cnn(diffraction)

    def merge_weights(self) -> torch.Tensor:
        """(N, N) weights of the gs2 merge (see :attr:`ModelConfig.merge_weights`)."""
        if self.cfg.merge_weights == "support":
            return self.support
        intensity = self.probe.abs() ** 2
        return self.support * intensity / intensity.max()

    def forward_intensity(self, obj_patches: torch.Tensor, offsets: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted far-field intensity of given object patches (merging gs2 groups)."""
        return physics.forward_intensity(obj_patches, self.probe, offsets, self.merge_weights())

    def forward(self, diffraction: torch.Tensor, offsets: torch.Tensor | None = None) -> torch.Tensor:
        """Diffraction -> predicted intensity: the self-supervised autoencoder path."""
        return self.forward_intensity(self.predict_object(diffraction), offsets)

    def loss(self, diffraction: torch.Tensor, offsets: torch.Tensor | None = None, count_split: float | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Poisson NLL in counts of the observed ``diffraction`` under the model's prediction.

        With ``count_split`` the photons are split by binomial thinning
        (:func:`fly64_train.physics.split_counts`): the CNN sees the ``count_split``
        part and the loss scores the prediction on the other, independent part.
        """
        if count_split is None:
            return physics.poisson_nll(self(diffraction, offsets), diffraction, self.intensity_scale)
        seen, held_out = physics.split_counts(diffraction, self.intensity_scale, count_split, generator)
        rate_scale = (1.0 - count_split) * self.intensity_scale**2
        return physics.poisson_nll_counts(self(seen, offsets), held_out, rate_scale)


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
