"""Configuration of one training job, shared by every backend (no framework import)."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from fly64_data.cli_common import fraction_or_off, non_negative_int, positive_finite_float, positive_int
from fly64_data.design import get_study_design
from fly64_train.training import field_checks
from fly64_train.training.model_config import ModelConfig
from fly64_train.training.option import (
    MAX_SEED,
    NESTED,
    internal,
    job_folder,
    option,
    time_or_off,
    whole_number,
)
from fly64_train.training.option import seed as seed_type
from fly64_train.training.torch_options import TorchOptions, nest_flat_keys

__all__ = ["BATCH_PATTERNS", "LOGGERS", "MAX_N_GROUPS", "MAX_NEIGHBORS", "TorchOptions", "TrainConfig"]

LOGGERS = ("csv", "tensorboard", "none")
#: Largest K a configuration may ask for (the design's is 7; a group draws C = gridsize**2 of them).
MAX_NEIGHBORS = 64
#: Diffraction patterns per optimisation step when ``TrainConfig.batch_size`` is not given.
BATCH_PATTERNS = 16
#: Most training groups a job may ask for: 10 million groups' index and offset arrays take about 1 GB
#: at gridsize 2, within any node; ``--n-groups 10**15`` asked numpy for petabytes.
MAX_N_GROUPS = 10_000_000


def _open_fraction(text: str) -> float:
    """argparse type: a number strictly between 0 and 1 (a factor that lowers a rate; no "off")."""
    try:
        value = fraction_or_off(text)
    except argparse.ArgumentTypeError:
        value = None  # its message offers 0/off, which a factor does not take
    if value is None:
        raise argparse.ArgumentTypeError(f"expected a number strictly between 0 and 1, got {text!r}")
    return value


def _n_groups(text: str) -> int:
    return whole_number(text, 1, MAX_N_GROUPS)


def _neighbor_count(text: str) -> int:
    return whole_number(text, 1, MAX_NEIGHBORS)


def _design_neighbor_count() -> int:
    return get_study_design().neighbor_count


def _design_grouping_seed() -> int:
    return int(get_study_design().rng_seeds["grouping"])


def _design_gridsizes() -> tuple[int, ...]:
    return tuple(get_study_design().gridsizes)


@dataclass
class TrainConfig:
    """Everything one job needs. Defaults are sized for 2 CPU cores at N = 128; the grouping
    defaults (K, grouping seed) are the study design's. Each field's ``metadata["option"]``
    says how it appears on the command line (see :mod:`fly64_train.training.option`)."""

    train_path: str = field(metadata=option("training NPZ (patched_train.npz or <view>_train.npz)",
                                            flag="--train", scope="job", required=True, metavar="NPZ"))
    """DATA-001 NPZ to train on."""
    job_dir: str = field(metadata=option("output folder for checkpoints, logs and wts.h5.zip", scope="job",
                                         required=True, metavar="DIR", type=job_folder))
    """Output folder (checkpoints, logs, bundle)."""
    gridsize: int = field(default=1, metadata=option("patterns per group side: 1 (baseline) or 2", type=int,
                                                     choices=_design_gridsizes(), scope="job", metavar="G"))
    """1 (baseline) or 2 (dense/sparse views)."""
    test_path: str | None = field(default=None, metadata=option("test NPZ, recorded in the bundle provenance",
                                                                flag="--test", scope="job", metavar="NPZ"))
    """Recorded in the bundle's provenance; not used for training or model selection."""
    neighbor_count: int = field(default_factory=_design_neighbor_count,
                                metadata=option("K, nearest neighbours a gs2 group is drawn from "
                                                f"(1 to {MAX_NEIGHBORS}; default: the study design's)",
                                                type=_neighbor_count, metavar="K"))
    """K nearest neighbours considered when forming a group (the design's ``neighbor_count``)."""
    n_groups: int | None = field(default=None, metadata=option(
        f"training groups per job, 1 to {MAX_N_GROUPS:,} (default: one per position)", type=_n_groups,
        metavar="N",
        aliases=("--n-images", "--n_images")))
    """Groups to train on; ``None``: one per scan position."""
    grouping_seed: int = field(default_factory=_design_grouping_seed,
                               metadata=option("seed of the group sampling, 0 to 2**32-1 (default: the "
                                                               "study design's)", type=seed_type, metavar="S"))
    """Seed of the group sampling (the design's ``rng_seeds["grouping"]``)."""
    seed: int = field(default=42, metadata=option("training seed (weights init, shuffling), 0 to 2**32-1",
                                                  type=seed_type, metavar="S"))
    """Seed of weight initialisation and shuffling."""
    batch_size: int | None = field(default=None, metadata=option(
        f"groups per optimisation step (default: {BATCH_PATTERNS} patterns' worth)", type=positive_int,
        metavar="N"))
    """Groups per optimisation step; default :data:`BATCH_PATTERNS` patterns' worth
    (16 groups at gridsize 1, 4 at gridsize 2): the shared CNN's cost and its
    updates per pattern then do not depend on the gridsize."""
    max_epochs: int = field(default=60, metadata=option("maximum epochs per job", type=positive_int, metavar="N",
                                                        aliases=("--epochs",)))
    """Upper bound on epochs; ``max_time`` may stop earlier."""
    max_time: str | None = field(default="00:00:12:00", metadata=option(
        "wall-clock cap on the job from its start (data preparation, training, validation), more than zero, "
        "or off "
        "(default: 12 minutes)", type=time_or_off, metavar="DD:HH:MM:SS"))
    """``DD:HH:MM:SS`` wall-clock cap on the job from its start (data preparation, training and
    validation; docs/training.md, "How a job ends"): the epoch it cuts is dropped, the best finished
    epoch is exported, and with no finished epoch nothing is (the job is interrupted). The default,
    12 minutes, leaves room for the runner's evaluation inside a 15-minute budget per job on 2 CPU
    cores; ``None`` removes the cap."""
    lr: float = field(default=1e-3, metadata=option("Adam learning rate", type=positive_finite_float,
                                                    metavar="LR"))
    """Initial Adam learning rate."""
    plateau_factor: float = field(default=0.5, metadata=option(
        "learning-rate schedule: multiply the rate by F when the validation loss stops falling "
        "(ReduceLROnPlateau; default: 0.5)", type=_open_fraction, metavar="F"))
    """Factor of ReduceLROnPlateau, in (0, 1)."""
    plateau_patience: int = field(default=2, metadata=option(
        "learning-rate schedule: epochs without a lower validation loss that are tolerated; the rate drops "
        "at the next one (default: 2; at least --max-epochs keeps the rate constant)", type=non_negative_int,
        metavar="N"))
    """Patience of ReduceLROnPlateau in torch's meaning (the rate drops at the ``N + 1``-th epoch without
    improvement; the TensorFlow backend is given ``N + 1``); ``max_epochs`` or more never lowers the rate."""
    val_fraction: float = field(default=0.05, metadata=internal("model-selection split, the same for every job"))
    """Fraction of the groups held out for validation."""
    count_split: float | None = field(default=0.5, metadata=option(
        "photon-split training: the CNN sees fraction F of each pattern's counts and is scored on the rest "
        "(0 or off: no split; default: 0.5)", type=fraction_or_off, metavar="F"))
    """Photon-split training (see :func:`fly64_train.backends.torch.physics.split_counts`): the CNN
    sees this fraction of each pattern's counts and is scored on the rest, so it
    cannot learn to reproduce the noise it is scored on. Default 0.5; ``None``
    trains on the full counts (input and target the same pattern), which lets
    the CNN pass the input's Poisson noise through to the object."""
    model: ModelConfig = field(default_factory=ModelConfig, metadata={"option": NESTED})
    """The network's shape (its own fields are options)."""
    backend: str = field(default="torch", metadata=option("training framework"))
    """The backend that trains the job (``fly64_train.core.seam.get_backend``): torch or tensorflow."""
    torch: TorchOptions = field(default_factory=TorchOptions, metadata={"option": NESTED})
    """The torch backend's own settings (Lightning's accelerator, devices, strategy, precision, loader
    workers); their flags keep their names (``--accelerator`` ...). Configurations written before they
    were nested hold them as top-level keys: :meth:`from_dict` moves them in."""
    deterministic: bool = field(default=False, metadata=option(
        "deterministic algorithms: identical losses on CPU", kind="true"))
    """Deterministic algorithms (identical losses on CPU); both backends honour it."""
    logger: str = field(default="csv", metadata=option("training log format", choices=LOGGERS))
    """``csv``, ``tensorboard`` or ``none``."""
    progress_bar: bool | None = field(default=None, metadata=option(
        "progress bar (default: only on a terminal)", kind="toggle", aliases=("--progress",)))
    """Progress bar; ``None``: only when stderr is a terminal."""
    resume: bool = field(default=True, metadata=option(
        "start from scratch even if checkpoints/last.ckpt exists", kind="false"))
    """Continue from ``checkpoints/last.ckpt`` when it exists."""
    limit_train_batches: int | float | None = field(default=None, metadata=internal("a test knob"))
    """Lightning ``limit_train_batches`` (tests use it to stop inside an epoch)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def json_config(self) -> dict[str, Any]:
        """The configuration a bundle records: JSON scalars and the model, without ``job_dir``."""
        # job_dir is where the bundle sits, not a property of the model: leaving it out keeps
        # bundles of identical runs byte-identical and free of absolute paths.
        return {k: v for k, v in self.to_dict().items()
                if k != "job_dir" and (v is None or isinstance(v, (str, int, float, bool, dict)))}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """The configuration a JSON object holds, in the nested layout or the older flat one (top-level
        ``accelerator``, ``precision`` ...: see :func:`~fly64_train.training.torch_options.nest_flat_keys`)."""
        data = nest_flat_keys(data)
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown train config field(s): {', '.join(sorted(unknown))}")
        model = data.pop("model", None)
        if isinstance(model, dict):
            model = ModelConfig.from_dict(model)
        torch = data.pop("torch", None)
        if torch is not None:
            try:
                torch = TorchOptions.from_dict(torch)
            except ValueError as exc:
                raise ValueError(f"torch: {exc}" if str(exc).startswith("unknown") else f"torch {exc}") from None
        return cls(**data, **({"model": model} if model is not None else {}),
                   **({"torch": torch} if torch is not None else {}))

    @classmethod
    def from_recorded(cls, data: dict[str, Any]) -> TrainConfig:
        """The checked configuration a bundle recorded (:meth:`json_config`: no ``job_dir``, maybe partial).

        Missing fields take the defaults; every recorded one, the model's included, goes through
        :meth:`check`. Raises ValueError naming the field.
        """
        if not isinstance(data, dict):
            raise ValueError(f"must be an object, got {type(data).__name__}")
        model = data.get("model")
        if model is not None and not isinstance(model, dict):
            raise ValueError(f"model must be an object, got {model!r}")
        # job_dir is never recorded (it is where the bundle sits); a placeholder lets check() run.
        config = cls.from_dict({"train_path": "(recorded)", **data, "job_dir": "(recorded)"})
        config.check()
        if model is not None:
            try:
                config.model.check()
            except ValueError as exc:
                raise ValueError(f"model.{exc}") from None
        return config

    def _check_fields(self) -> None:
        # Types and ranges of every field: a recorded config is untrusted (a bundle's manifest).
        for name in ("train_path", "job_dir"):
            field_checks.text(name, getattr(self, name))
        if self.test_path is not None:
            field_checks.text("test_path", self.test_path)
        field_checks.integer("gridsize", self.gridsize, 1, max(_design_gridsizes()))
        field_checks.integer("neighbor_count", self.neighbor_count, 1, MAX_NEIGHBORS)
        if self.n_groups is not None:
            field_checks.integer("n_groups", self.n_groups, 1, MAX_N_GROUPS)
        field_checks.integer("grouping_seed", self.grouping_seed, 0, MAX_SEED)
        field_checks.integer("seed", self.seed, 0, MAX_SEED)
        if self.batch_size is not None:
            field_checks.integer("batch_size", self.batch_size, 1)
        field_checks.integer("max_epochs", self.max_epochs, 1)
        if self.max_time is not None:
            field_checks.text("max_time", self.max_time)
            try:  # the same rule as --max-time: DD:HH:MM:SS in ASCII digits, above zero, at most a year
                time_or_off(self.max_time)
            except argparse.ArgumentTypeError as exc:
                raise ValueError(f"max_time {exc}") from None
        field_checks.real("lr", self.lr, 0, low_open=True)
        field_checks.real("plateau_factor", self.plateau_factor, 0, 1, low_open=True, high_open=True)
        field_checks.integer("plateau_patience", self.plateau_patience, 0)
        field_checks.real("val_fraction", self.val_fraction, 0, 1, high_open=True)
        if self.count_split is not None:
            field_checks.real("count_split", self.count_split, 0, 1, low_open=True, high_open=True)
        if not isinstance(self.model, ModelConfig):
            raise ValueError(f"model must be a model configuration, got {self.model!r}")
        field_checks.text("backend", self.backend)
        if not isinstance(self.torch, TorchOptions):
            raise ValueError(f"torch must be the torch options, got {self.torch!r}")
        try:
            self.torch.check()
        except ValueError as exc:
            raise ValueError(f"torch.{exc}") from None
        field_checks.boolean("deterministic", self.deterministic)
        field_checks.text("logger", self.logger, LOGGERS)
        if self.progress_bar is not None:
            field_checks.boolean("progress_bar", self.progress_bar)
        field_checks.boolean("resume", self.resume)
        if self.limit_train_batches is not None:
            field_checks.real("limit_train_batches", self.limit_train_batches, 0, low_open=True)

    @property
    def groups_per_step(self) -> int:
        """``batch_size``, or :data:`BATCH_PATTERNS` patterns' worth of groups."""
        return self.batch_size if self.batch_size is not None else max(1, BATCH_PATTERNS // self.gridsize**2)

    def check(self) -> None:
        """Raise ValueError on the first field of the wrong type or range, or the first inconsistent one.

        The one checker of a training configuration, whether it came from the command line or from
        a bundle's recorded ``config`` (see :meth:`from_recorded`); the model's fields are
        :meth:`ModelConfig.check`'s."""
        self._check_fields()
        if not self.train_path or not self.job_dir:
            raise ValueError("train_path and job_dir are required")
        if self.logger not in LOGGERS:
            raise ValueError(f"logger must be one of {LOGGERS}, got {self.logger!r}")
        if self.gridsize < 1:
            raise ValueError(f"gridsize must be >= 1, got {self.gridsize}")
        if (self.batch_size is not None and self.batch_size < 1) or self.max_epochs < 1:
            raise ValueError("batch_size and max_epochs must be >= 1")
        if self.count_split is not None and not 0 < self.count_split < 1:
            raise ValueError(f"count_split must be in (0, 1) or None, got {self.count_split}")
