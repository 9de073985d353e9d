"""The torch backend's own training settings (Lightning's), nested in a :class:`TrainConfig` as ``config.torch``.

These say how Lightning runs a job (which device, how many, how it is distributed,
in what precision, with how many loader processes), not what the model learns from
which data; the TensorFlow backend has no equivalent of any of them, so they sit
apart from the framework-neutral fields. Each field still has its flag
(``--accelerator``, ``--devices``, ``--strategy``, ``--precision``,
``--num-workers``), declared here and grouped under "torch backend" by the CLI.

Configurations written before the settings were nested (bundles' ``config``,
checkpoints' ``resume_settings.json``) hold them as top-level keys;
:func:`nest_flat_keys` is the one place that moves them in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from fly64_data.cli_common import non_negative_int
from fly64_train.core.device import ACCELERATORS, normal_device
from fly64_train.training import field_checks
from fly64_train.training.option import MAX_DEVICES, option
from fly64_train.training.option import devices as devices_type

#: Lightning precisions (the legacy spellings ``16``/``32`` are not offered; a test pins each name to Lightning's).
PRECISIONS = ("32-true", "64-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true")
#: Lightning strategies by registry name (a test checks each against Lightning's StrategyRegistry).
STRATEGIES = ("auto", "single_device", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true", "fsdp", "deepspeed")


@dataclass(frozen=True)
class TorchOptions:
    """How Lightning runs a torch job; ignored by the TensorFlow backend, which refuses a precision or
    strategy other than the default rather than train differently from what the config says."""

    accelerator: str = field(default="auto", metadata=option(
        "auto (a GPU when present), cpu, gpu or cuda (default: auto)", choices=ACCELERATORS))
    """Where the job trains, a device kind of :mod:`fly64_train.core.device` (``gpu`` is ``cuda``)."""
    devices: int | str = field(default="auto", metadata=option("number of devices or 'auto'", type=devices_type,
                                                               metavar="N"))
    """Lightning devices: a count or ``auto``."""
    strategy: str = field(default="auto", metadata=option("Lightning strategy (default: auto)",
                                                          choices=STRATEGIES))
    """Lightning strategy (one of :data:`STRATEGIES`)."""
    precision: str = field(default="32-true", metadata=option("Lightning precision, e.g. 16-mixed on a GPU "
                                                              "(default: 32-true)", choices=PRECISIONS))
    """Lightning precision (one of :data:`PRECISIONS`); the only one of these a resume must keep."""
    num_workers: int = field(default=0, metadata=option("data-loader worker processes", type=non_negative_int,
                                                        metavar="N"))
    """Data-loader worker processes."""

    @property
    def device_kind(self) -> str:
        """``accelerator`` in the canonical device vocabulary (``auto``, ``cpu`` or ``cuda``)."""
        return normal_device(self.accelerator)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> TorchOptions:
        """The options a JSON object holds (missing keys at their defaults); unchecked (see :meth:`check`)."""
        if not isinstance(data, dict):
            raise ValueError(f"must be an object, got {data!r}")
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown torch option(s): {', '.join(sorted(map(str, unknown)))}")
        return cls(**data)

    def check(self) -> None:
        """Raise one ValueError line naming the first field of the wrong type or value."""
        field_checks.text("accelerator", self.accelerator, ACCELERATORS)
        if self.devices != "auto":
            field_checks.integer("devices", self.devices, 1, MAX_DEVICES)
        field_checks.text("strategy", self.strategy, STRATEGIES)
        field_checks.text("precision", self.precision, PRECISIONS)
        field_checks.integer("num_workers", self.num_workers, 0)


#: The top-level keys of a configuration written before the torch options were nested.
FLAT_TORCH_KEYS = tuple(f.name for f in fields(TorchOptions))


def nest_flat_keys(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the pre-nesting top-level torch keys (``accelerator``, ``precision`` ...) moved into
    ``data["torch"]``; a configuration without them is returned unchanged (a copy).

    Raises ValueError when a key is both flat and nested (two values, neither obviously meant).
    """
    data = dict(data)
    flat = {key: data.pop(key) for key in FLAT_TORCH_KEYS if key in data}
    if not flat:
        return data
    nested = data.get("torch", {})
    if not isinstance(nested, dict):
        raise ValueError(f"torch must be an object, got {nested!r}")
    both = sorted(set(flat) & set(nested))
    if both:
        raise ValueError(f"torch.{both[0]} is given both as torch.{both[0]} and as the older top-level "
                         f"{both[0]}")
    data["torch"] = {**nested, **flat}
    return data
