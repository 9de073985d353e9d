"""Per-scan refinement on torch: a few Adam steps of the training loss on a test split's own patterns.

A step beside training (:mod:`fly64_train.backends.torch.train`), without Lightning: no checkpoints,
no validation, no schedule, a fixed number of steps (docs/decisions.md, "Per-scan refinement").
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from fly64_train.backends.torch.loaded_model import TorchLoadedModel
    from fly64_train.evaluation.refine import RefineConfig


def refine(loaded: TorchLoadedModel, read_rows: Callable[[np.ndarray], np.ndarray], indices: np.ndarray,
           offsets: np.ndarray, *, intensity_scale: float, cfg: RefineConfig) -> TorchLoadedModel:
    """A new loaded model: a copy of ``loaded``'s PtychoPINN after ``cfg.steps`` Adam steps of its loss.

    ``indices`` (G, C) and ``offsets`` (G, C, 2) are the groups; ``read_rows`` gives the diffraction
    amplitudes of rows; their counts are ``(intensity_scale * amplitude)^2``. Each step draws
    ``cfg.groups_per_step`` groups, in epochs of a seeded permutation, and a fresh photon split
    (``cfg.count_split``) from a generator seeded by ``cfg.seed``: the same call gives the same model on CPU.
    """
    from fly64_train.backends.torch.loaded_model import TorchLoadedModel

    device = loaded.device
    model = copy.deepcopy(loaded.model).to(device)
    # The loss's rate uses the model's intensity scale: half A of the photons has its own (see
    # fly64_train.evaluation.refine.refine_on_half_a); prediction does not depend on it.
    model.intensity_scale.fill_(float(intensity_scale))
    gridsize = int(model.cfg.gridsize)
    if gridsize > 1:
        model.fix_canvas(offsets)
    model.train()  # as in training: BatchNorm normalises by the batch and updates its running statistics
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    generator = torch.Generator(device=device)
    generator.manual_seed(cfg.seed)
    per_step = min(cfg.groups_per_step(gridsize), len(indices))
    n = int(model.cfg.patch_size)
    order, at = rng.permutation(len(indices)), 0
    for _ in range(cfg.steps):
        if at + per_step > len(order):
            order, at = rng.permutation(len(indices)), 0
        rows = np.sort(order[at:at + per_step])
        at += per_step
        idx = indices[rows]
        diffraction = torch.from_numpy(
            np.ascontiguousarray(read_rows(idx.ravel()), dtype=np.float32).reshape(*idx.shape, n, n)).to(device)
        batch_offsets = torch.from_numpy(offsets[rows]).float().to(device) if gridsize > 1 else None
        loss = model.loss(diffraction, batch_offsets, cfg.count_split, generator)
        if not torch.isfinite(loss):
            raise ValueError(f"per-scan refinement diverged: the loss is {float(loss)} (lower the refine lr)")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    return TorchLoadedModel(model, device)
