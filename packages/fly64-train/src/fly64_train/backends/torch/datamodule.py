"""The LightningDataModule: validated NPZ -> groups -> lazy train/val loaders."""

from __future__ import annotations

import os

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from fly64_train.backends.torch.group_dataset import GroupDataset
from fly64_train.data.grouping import Groups, make_groups
from fly64_train.data.reader import DatasetInfo, open_dataset


class Fly64DataModule(L.LightningDataModule):
    """Groups of one training NPZ, split into train and validation groups.

    The file is validated against DATA-001 on construction (``info``), so a bad
    dataset is refused before a Trainer exists. Patterns stay on disk; only
    coordinates, the probe and metadata are held in memory.

    Parameters
    ----------
    train_path : path
        DATA-001 NPZ (Phase C ``patched_train.npz`` or a Phase D view file).
    gridsize, neighbor_count, n_groups, grouping_seed
        See :func:`fly64_train.data.grouping.make_groups`.
    batch_size : int
        Groups per optimisation step.
    val_fraction : float
        Fraction of groups held out for the validation loss (at least one
        group when > 0; 0 disables validation).
    num_workers : int
        DataLoader worker processes.
    seed : int
        Seeds the train/val split and the shuffling order.
    """

    def __init__(self, train_path: str | os.PathLike, gridsize: int = 1, neighbor_count: int = 7,
                 n_groups: int | None = None, grouping_seed: int = 123, batch_size: int = 16,
                 val_fraction: float = 0.05, num_workers: int = 0, seed: int = 42) -> None:
        super().__init__()
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.info: DatasetInfo = open_dataset(train_path, gridsize, neighbor_count)
        self.gridsize = gridsize
        self.neighbor_count = neighbor_count
        self.n_groups = n_groups
        self.grouping_seed = grouping_seed
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.num_workers = num_workers
        self.seed = seed
        self.groups: Groups = make_groups(self.info.ycoords, self.info.xcoords, gridsize, neighbor_count,
                                          n_groups, grouping_seed)
        self.train_set: GroupDataset | None = None
        self.val_set: GroupDataset | None = None

    @property
    def has_validation(self) -> bool:
        return self.val_fraction > 0 and len(self.groups) > 1

    def setup(self, stage: str | None = None) -> None:
        order = np.random.default_rng(self.seed).permutation(len(self.groups))
        n_val = max(1, int(round(self.val_fraction * len(self.groups)))) if self.has_validation else 0
        val_rows, train_rows = np.sort(order[:n_val]), np.sort(order[n_val:])
        self.train_set = GroupDataset(self.info.diffraction, self.groups.subset(train_rows))
        self.val_set = GroupDataset(self.info.diffraction, self.groups.subset(val_rows)) if n_val else None

    def _loader(self, dataset: GroupDataset, shuffle: bool) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle, generator=generator,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self.val_set, shuffle=False) if self.val_set is not None else []
