"""The configurations a bundle's ``manifest.json`` records, checked as untrusted input before any model is built.

The manifest schema only says that ``model_config`` and ``config`` are objects. A
colleague with write access can re-seal a bundle (fix the per-file sha256 and the
training manifest's digest) after changing any value in them, so every key goes
through the same checkers as a command line (:meth:`ModelConfig.check`,
:meth:`TrainConfig.check`), and the header fields the model is built from must
agree with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fly64_train.training import field_checks
from fly64_train.training.config import TrainConfig
from fly64_train.training.model_config import ModelConfig

if TYPE_CHECKING:
    from fly64_train.bundle.manifest import BundleManifest

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class RecordedConfigs:
    """A bundle's checked model and training configurations."""

    model: ModelConfig
    """The architecture the weights must fit (``model_config``; format 1.x gaps take ``ModelConfig.LEGACY``)."""
    train: TrainConfig
    """The recorded training configuration (``config``; missing fields at their defaults)."""
    intensity_scale: float
    """The manifest's ``intensity_scale``: the forward model's buffer must hold the same value."""


def recorded_configs(manifest: BundleManifest, *, legacy: bool = False) -> RecordedConfigs:
    """Check ``manifest``'s ``model_config``, ``config``, ``N``, ``gridsize`` and ``intensity_scale``.

    Raises ValueError ``manifest.json: <key> ...`` naming the first bad key.
    """
    try:
        data = manifest.model_config
        if not isinstance(data, dict):
            raise ValueError(f"model_config must be an object, got {data!r}")
        try:
            model = ModelConfig.from_dict(data, legacy=legacy)
            model.check()
        except ValueError as exc:
            raise ValueError(f"model_config.{exc}" if not str(exc).startswith("unknown") else
                             f"model_config: {exc}") from None
        for key, recorded_value, value in (("N", manifest.patch_size, model.patch_size),
                                           ("gridsize", manifest.gridsize, model.gridsize)):
            field_checks.integer(key, recorded_value, 1)
            if recorded_value != value:
                raise ValueError(f"{key} {recorded_value} disagrees with model_config ({value})")
        field_checks.real("intensity_scale", manifest.intensity_scale, 0, low_open=True)
        try:
            train = TrainConfig.from_recorded(manifest.config)
        except ValueError as exc:
            raise ValueError(f"config.{exc}" if not str(exc).startswith(("unknown", "must")) else
                             f"config: {exc}") from None
        recorded = manifest.config
        if "gridsize" in recorded and train.gridsize != model.gridsize:
            raise ValueError(f"config.gridsize {train.gridsize} disagrees with model_config ({model.gridsize})")
    except ValueError as exc:
        raise ValueError(f"{MANIFEST}: {exc}") from None
    return RecordedConfigs(model, train, float(manifest.intensity_scale))
