"""Configuration of one training job, shared by every backend (no framework import)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from fly64_train.training.model_config import ModelConfig

LOGGERS = ("csv", "tensorboard", "none")
#: Diffraction patterns per optimisation step when ``TrainConfig.batch_size`` is not given.
BATCH_PATTERNS = 16


@dataclass
class TrainConfig:
    """Everything one job needs. Defaults are sized for 2 CPU cores at N = 128.

    Attributes
    ----------
    train_path : str
        DATA-001 NPZ to train on.
    job_dir : str
        Output folder (checkpoints, logs, bundle).
    gridsize : int
        1 (baseline) or 2 (dense/sparse views).
    test_path : str, optional
        Recorded in the bundle's provenance; not used for training or model selection.
    max_epochs : int
        Upper bound on epochs; ``max_time`` may stop earlier.
    batch_size : int, optional
        Groups per optimisation step; default :data:`BATCH_PATTERNS` patterns' worth
        (16 groups at gridsize 1, 4 at gridsize 2): the shared CNN's cost and its
        updates per pattern then do not depend on the gridsize.
    max_time : str, optional
        Lightning ``DD:HH:MM:SS`` wall-clock cap on training (checkpoints and the bundle are
        still written). The default, 12 minutes, leaves room for the runner's evaluation
        inside a 15-minute budget per job on 2 CPU cores; ``None`` removes the cap.
    count_split : float, optional
        Photon-split training (see :func:`fly64_train.backends.torch.physics.split_counts`): the CNN
        sees this fraction of each pattern's counts and is scored on the rest, so it
        cannot learn to reproduce the noise it is scored on. Default 0.5; ``None``
        trains on the full counts (input and target the same pattern), which lets
        the CNN pass the input's Poisson noise through to the object.
    """

    train_path: str
    job_dir: str
    gridsize: int = 1
    test_path: str | None = None
    neighbor_count: int = 7
    n_groups: int | None = None
    grouping_seed: int = 123
    seed: int = 42
    batch_size: int | None = None
    max_epochs: int = 60
    max_time: str | None = "00:00:12:00"
    lr: float = 1e-3
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    val_fraction: float = 0.05
    count_split: float | None = 0.5
    model: ModelConfig = field(default_factory=ModelConfig)
    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    precision: str = "32-true"
    deterministic: bool = False
    num_workers: int = 0
    logger: str = "csv"
    progress_bar: bool | None = None
    resume: bool = True
    limit_train_batches: int | float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown train config field(s): {', '.join(sorted(unknown))}")
        model = data.pop("model", None)
        if isinstance(model, dict):
            model = ModelConfig.from_dict(model)
        return cls(**data, **({"model": model} if model is not None else {}))

    @property
    def groups_per_step(self) -> int:
        """``batch_size``, or :data:`BATCH_PATTERNS` patterns' worth of groups."""
        return self.batch_size if self.batch_size is not None else max(1, BATCH_PATTERNS // self.gridsize**2)

    def check(self) -> None:
        if self.logger not in LOGGERS:
            raise ValueError(f"logger must be one of {LOGGERS}, got {self.logger!r}")
        if self.gridsize < 1:
            raise ValueError(f"gridsize must be >= 1, got {self.gridsize}")
        if (self.batch_size is not None and self.batch_size < 1) or self.max_epochs < 1:
            raise ValueError("batch_size and max_epochs must be >= 1")
        if self.count_split is not None and not 0 < self.count_split < 1:
            raise ValueError(f"count_split must be in (0, 1) or None, got {self.count_split}")
