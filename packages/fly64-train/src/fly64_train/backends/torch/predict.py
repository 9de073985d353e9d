"""Predict the object patch at every position of a dataset with a torch model."""

from __future__ import annotations

import os

import numpy as np
import torch

from fly64_train.backends.torch.model import PtychoPINN
from fly64_train.data.grouping import make_groups
from fly64_train.data.reader import open_dataset


@torch.no_grad()
def predict_patches(model: PtychoPINN, path: str | os.PathLike, neighbor_count: int = 7,
                    grouping_seed: int = 123, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Object patch at every position of a dataset (gs2: each position predicted as a group seed).

    Returns ``(patches (n, N, N) complex64, ycoords, xcoords)``.
    """
    info = open_dataset(path, model.cfg.gridsize, neighbor_count)
    groups = make_groups(info.ycoords, info.xcoords, model.cfg.gridsize, neighbor_count, None, grouping_seed)
    out = np.empty((info.n, info.patch_size, info.patch_size), np.complex64)
    model.eval()
    device = next(model.parameters()).device
    for start in range(0, len(groups), batch_size):
        idx = groups.indices[start:start + batch_size]
        diff = np.stack([info.diffraction.read_rows(row) for row in idx])
        obj = model.predict_object(torch.from_numpy(diff).to(device))[:, 0].cpu().numpy()
        out[idx[:, 0]] = obj  # column 0 is the seed: every position exactly once
    return out, info.ycoords, info.xcoords
