"""The shape of a PtychoPINN model, shared by every backend (no framework import)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from fly64_data.cli_common import positive_finite_float, positive_int
from fly64_train.training import field_checks
from fly64_train.training.option import internal, option


def _design_gridsizes() -> tuple[int, ...]:
    from fly64_data.design import get_study_design

    return tuple(get_study_design().gridsizes)


#: gs2 merge weights a model can use (see :attr:`ModelConfig.merge_weights`).
MERGE_WEIGHTS = ("probe_intensity", "support")


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

    patch_size: int = field(default=128, metadata=internal("set from the training data's N"))
    gridsize: int = field(default=1, metadata=internal("set from TrainConfig.gridsize"))
    base_width: int = field(default=16, metadata=option("CNN width of the first level", type=positive_int,
                                                        metavar="C"))
    depth: int = field(default=3, metadata=option("2x poolings in the encoder", type=positive_int, metavar="D"))
    convs_per_level: int = field(default=2, metadata=option("3x3 convolutions per encoder/decoder level",
                                                            type=positive_int, metavar="N"))
    support_fraction: float = field(default=0.5, metadata=internal("fixed: the decoders end at N/2"))
    amplitude_max: float = field(default=2.0, metadata=option("amplitude = AMAX * sigmoid(.)",
                                                              type=positive_finite_float, metavar="AMAX"))
    batch_norm: bool = field(default=True, metadata=option("BatchNorm after each hidden convolution",
                                                           kind="toggle"))
    input_fraction: float = field(default=0.5, metadata=option(
        "the encoder sees the central F * N square of each pattern", type=positive_finite_float, metavar="F"))
    flat_start: bool = field(default=True, metadata=option("start from the flat object (zeroed last "
                                                           "decoder convolutions)", kind="toggle"))
    merge_weights: str = field(default="support", metadata=option("gs2 merge weights",
                                                                  choices=MERGE_WEIGHTS))
    shared_encoder: bool = field(default=True, metadata=option("gs2: one single-pattern CNN for every pattern "
                                                               "of a group", kind="toggle"))

    #: Values of fields added after format 1.0 bundles were written, for manifests that lack them.
    LEGACY: ClassVar[dict[str, Any]] = {"input_fraction": 1.0, "flat_start": False, "merge_weights": "support",
                                        "shared_encoder": False}
    MERGE_WEIGHTS: ClassVar[tuple[str, ...]] = MERGE_WEIGHTS

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
        if self.input_size < 1:
            return -1  # a crop of no pixel: check() refuses it
        ratio = (self.patch_size // 2) * 2**self.depth / self.input_size
        return int(round(math.log2(ratio))) if ratio >= 1 else -1

    @classmethod
    def from_dict(cls, data: dict[str, Any], legacy: bool = False) -> ModelConfig:
        """Config from a dict. Missing fields take the defaults, or with ``legacy=True`` (a
        bundle's recorded config) the :attr:`LEGACY` values of the architecture it was saved with."""
        known = {f.name for f in fields(cls)}  # not __dataclass_fields__: it lists the ClassVars too
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config field(s): {', '.join(sorted(unknown))}")
        return cls(**{**cls.LEGACY, **data}) if legacy else cls(**data)

    #: Upper bounds that only keep the arithmetic of a hostile config finite; what a bundle may build
    #: is bounded by the weights it holds (:meth:`conv_kernel_elements`), not by these.
    MAX_PATCH_SIZE: ClassVar[int] = 1 << 14
    MAX_WIDTH: ClassVar[int] = 1 << 16
    MAX_CONVS: ClassVar[int] = 64

    def check(self) -> None:
        """Raise ValueError naming the first field of the wrong type or out of range, then the
        first inconsistent combination. The one checker for every source: CLI, code, a bundle."""
        self._check_fields()
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
        if not 0 < self.input_fraction <= 1 or m < 2**d or m % 2 != n % 2 or m % (2**d):
            raise ValueError(f"input_fraction {self.input_fraction} gives a {m}-pixel crop of N = {n}: it must be "
                             f"in (0, 1], centred (same parity as N) and divisible by 2**depth = {2**d}")
        if self.upsamplings < 0 or 2 ** self.upsamplings * (m // 2**d) != n // 2:
            raise ValueError(f"the decoders cannot reach N/2 = {n // 2} from a {m // 2**d}-pixel encoding "
                             f"by 2x upsampling (input_fraction {self.input_fraction}, depth {d})")

    def _check_fields(self) -> None:
        # Types and ranges first: depth 10**12 must not reach 2**depth, nor "8" reach torch.
        field_checks.integer("patch_size", self.patch_size, 2, self.MAX_PATCH_SIZE)
        field_checks.integer("gridsize", self.gridsize, 1, max(_design_gridsizes()))
        field_checks.integer("base_width", self.base_width, 1, self.MAX_WIDTH)
        # 2**depth must divide patch_size, so depth < patch_size.bit_length() bounds it.
        field_checks.integer("depth", self.depth, 1, int(self.patch_size).bit_length() - 1)
        field_checks.integer("convs_per_level", self.convs_per_level, 1, self.MAX_CONVS)
        field_checks.real("support_fraction", self.support_fraction, 0, 1, low_open=True)
        field_checks.real("amplitude_max", self.amplitude_max, 0, low_open=True)
        field_checks.boolean("batch_norm", self.batch_norm)
        field_checks.real("input_fraction", self.input_fraction, 0, 1, low_open=True)
        field_checks.boolean("flat_start", self.flat_start)
        field_checks.text("merge_weights", self.merge_weights, self.MERGE_WEIGHTS)
        field_checks.boolean("shared_encoder", self.shared_encoder)

    def conv_kernel_elements(self) -> int:
        """Elements of the CNN's convolution kernels (3x3, biases and normalisation left out).

        Both backends store at least these in their weight files, so a bundle whose file holds
        fewer elements describes a bigger model than it carries, and is refused before building
        (pinned to both backends' real layers by a test). Call after :meth:`check`.
        """
        def block(cin: int, cout: int, count: int) -> int:
            return 9 * (cin * cout + (count - 1) * cout * cout)

        total = 0
        cin = self.cnn_channels
        for level in range(self.depth):
            cout = self.base_width * 2**level
            total += block(cin, cout, self.convs_per_level)
            cin = cout
        decoder = 0
        for level in (min(level, self.depth - 1) for level in reversed(range(self.upsamplings))):
            cout = self.base_width * 2**level
            decoder += block(cin, cout, self.convs_per_level)
            cin = cout
        decoder += block(cin, self.base_width, 1) + 9 * self.base_width * self.cnn_channels
        return total + 2 * decoder  # two decoders: amplitude and phase
