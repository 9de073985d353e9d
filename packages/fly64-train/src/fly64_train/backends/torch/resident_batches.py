"""On-device batching: a dataset's patterns held as one tensor on the training device.

When a dataset's diffraction fits the device budget it is read once, copied to
the training device on the first batch, and every step gathers its groups there
by index. The DataLoader then only yields index vectors (one tensor per step, no
per-pattern collation, no host-to-device copy of patterns). Batches are the same
dicts as :class:`~fly64_train.backends.torch.group_dataset.GroupDataset`'s and
come in the same order (the same seeded sampler), so both paths train alike.
"""

from __future__ import annotations

import numpy as np
import torch

from fly64_data.grouping import Groups
from fly64_train.data.reader import ArrayReader


class GroupIndices(torch.utils.data.Dataset):
    """Indexed by a list of group rows (a whole batch at once): yields those rows as a tensor."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, rows: list[int]) -> torch.Tensor:
        return torch.as_tensor(rows, dtype=torch.int64)


class ResidentGroups:
    """All patterns of a dataset plus the groups of one split, gathered on the device per batch."""

    def __init__(self, diffraction: ArrayReader, groups: Groups) -> None:
        self.patterns = torch.from_numpy(diffraction.read_rows(slice(None)))
        self.indices = torch.from_numpy(groups.indices)
        self.offsets = torch.from_numpy(groups.offsets.astype(np.float32))

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def _to(self, device: torch.device) -> None:
        if self.patterns.device != device:
            self.patterns = self.patterns.to(device)
            self.indices = self.indices.to(device)
            self.offsets = self.offsets.to(device)

    def gather(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """The batch of groups ``rows`` (already on the training device)."""
        self._to(rows.device)
        return {"diffraction": self.patterns[self.indices[rows]], "offsets": self.offsets[rows], "index": rows}

