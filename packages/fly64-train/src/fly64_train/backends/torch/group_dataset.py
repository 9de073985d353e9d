"""A torch Dataset of diffraction-pattern groups, read from disk on access."""

from __future__ import annotations

import numpy as np
import torch

from fly64_data.grouping import Groups
from fly64_train.data.reader import ArrayReader


class GroupDataset(torch.utils.data.Dataset):
    """Groups of diffraction patterns, read from disk on access.

    Items are dicts with ``diffraction`` (C, N, N) float32, ``offsets`` (C, 2)
    float32 and ``index`` (the group's row in ``groups``).
    """

    def __init__(self, diffraction: ArrayReader, groups: Groups) -> None:
        self.diffraction = diffraction
        self.groups = groups

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rows = self.groups.indices[i]
        return {
            "diffraction": torch.from_numpy(self.diffraction.read_rows(rows)),
            "offsets": torch.from_numpy(self.groups.offsets[i].astype(np.float32)),
            "index": torch.tensor(i, dtype=torch.int64),
        }
