"""The LightningDataModule: validated NPZ -> groups -> train/val batches (lazy or on the device)."""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from fly64_data.contract import ContractError
from fly64_data.grouping import Groups, make_groups
from fly64_train.backends.torch.group_dataset import GroupDataset
from fly64_train.backends.torch.resident_batches import GroupIndices, ResidentGroups
from fly64_train.data.grouping import split_groups
from fly64_train.data.reader import DatasetInfo, open_dataset


@dataclass(frozen=True)
class DataConfig:
    """How one training file becomes batches of groups."""

    train_path: str
    """DATA-001 NPZ (Phase C ``patched_train.npz`` or a Phase D view file)."""
    gridsize: int
    """1 (one pattern per group) or g > 1 (g**2 patterns per group)."""
    neighbor_count: int
    """K, nearest neighbours a seed's partners are drawn from (see :func:`make_groups`)."""
    n_groups: int | None
    """Number of groups; ``None`` = one per position."""
    grouping_seed: int
    """Seed of the neighbour draws."""
    batch_size: int
    """Groups per optimisation step."""
    val_fraction: float
    """Fraction of groups held out for the validation loss (at least one when > 0; 0 disables it)."""
    num_workers: int
    """DataLoader worker processes of the lazy path."""
    seed: int
    """Seeds the train/val split and the shuffling order."""
    resident_bytes: int
    """Keep the patterns on the training device and batch by index when they take at most this many bytes."""

    def check(self) -> None:
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.batch_size < 1 or self.num_workers < 0 or self.resident_bytes < 0:
            raise ValueError("batch_size must be >= 1, num_workers and resident_bytes >= 0")


class Fly64DataModule(L.LightningDataModule):
    """Groups of one training NPZ, split into train and validation groups.

    The file is validated against DATA-001 on construction (``info``), so a bad
    dataset is refused before a Trainer exists. A dataset whose patterns fit
    ``config.resident_bytes`` is read once and batched on the training device
    (:mod:`~fly64_train.backends.torch.resident_batches`); a larger one stays on
    disk and is read per batch, so peak memory does not grow with it.
    """

    def __init__(self, config: DataConfig) -> None:
        super().__init__()
        config.check()
        self.config = config
        self.info: DatasetInfo = open_dataset(config.train_path, config.gridsize, config.neighbor_count)
        try:
            self.groups: Groups = make_groups(self.info.ycoords, self.info.xcoords, config.gridsize,
                                              config.neighbor_count, config.n_groups, config.grouping_seed)
        except ValueError as exc:
            raise ContractError(f"{config.train_path}: {exc}") from None
        self.resident = self.info.diffraction.nbytes <= config.resident_bytes
        self.train_set: GroupDataset | ResidentGroups | None = None
        self.val_set: GroupDataset | ResidentGroups | None = None

    @property
    def has_validation(self) -> bool:
        return self.config.val_fraction > 0 and len(self.groups) > 1

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        train, val = split_groups(self.groups, self.config.val_fraction, self.config.seed)
        split = ResidentGroups if self.resident else GroupDataset
        self.train_set = split(self.info.diffraction, train)
        self.val_set = split(self.info.diffraction, val) if val is not None else None

    def _loader(self, dataset: GroupDataset | ResidentGroups, shuffle: bool) -> DataLoader:
        # The same seeded generator drives both paths' samplers, so they visit groups in the same order.
        generator = torch.Generator().manual_seed(self.config.seed) if shuffle else None
        if isinstance(dataset, ResidentGroups):
            indices = GroupIndices(len(dataset))
            order = RandomSampler(indices, generator=generator) if shuffle else SequentialSampler(indices)
            return DataLoader(indices, sampler=BatchSampler(order, self.config.batch_size, drop_last=False),
                              batch_size=None, generator=generator)
        return DataLoader(dataset, batch_size=self.config.batch_size, shuffle=shuffle, generator=generator,
                          num_workers=self.config.num_workers, persistent_workers=self.config.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self.val_set, shuffle=False) if self.val_set is not None else []

    def on_after_batch_transfer(self, batch: dict | torch.Tensor, dataloader_idx: int) -> dict[str, torch.Tensor]:
        if not isinstance(batch, torch.Tensor):
            return batch
        # Resident path: ``batch`` is the group rows, already on the device; gather the patterns there.
        split = self.val_set if self.trainer is not None and self.trainer.validating else self.train_set
        return split.gather(batch)
