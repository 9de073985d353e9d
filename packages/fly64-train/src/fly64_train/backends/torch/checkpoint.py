"""The job's Lightning checkpoints: what is written every epoch, and how a checkpoint is trusted.

Two :class:`~lightning.pytorch.callbacks.ModelCheckpoint` callbacks write into
``<job_dir>/checkpoints/``: one keeps the best epoch by the monitored loss
(``best-epoch=NNN.ckpt``), the other overwrites ``last.ckpt`` at the end of
*every* epoch, so a killed run loses at most the epoch it was in. (Lightning's
own ``save_last`` writes ``last.ckpt`` only when a top-k checkpoint was saved,
i.e. only when the loss improved.)

No checkpoint is trusted: every load uses ``torch.load(weights_only=True)``, so a
pickled object in a job folder can never run code, and the paths a checkpoint
records for itself (``best_model_path`` and friends) must lie inside the job's
``checkpoints/`` folder, because Lightning would load them and delete them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint

#: File name of the every-epoch checkpoint a rerun resumes from.
LAST_NAME = "last.ckpt"
#: The ModelCheckpoint state entries that name files Lightning may later load or delete.
_PATH_FIELDS = ("best_model_path", "kth_best_model_path", "last_model_path", "dirpath")


class CheckpointError(ValueError):
    """A checkpoint that is not plain tensors and numbers, or that points outside its job folder."""


def checkpoint_callbacks(ckpt_dir: Path, monitor: str) -> tuple[ModelCheckpoint, ModelCheckpoint]:
    """``(best, last)``: the best epoch by ``monitor``, and ``last.ckpt`` written every epoch.

    ``last`` comes second: Lightning runs checkpoint callbacks in the order given,
    so the state saved into ``last.ckpt`` already knows this epoch's best.
    """
    best = ModelCheckpoint(dirpath=str(ckpt_dir), filename="best-{epoch:03d}", monitor=monitor, mode="min",
                           save_top_k=1, save_last=False)
    # monitor=None with save_top_k=1 saves every epoch under one name and replaces the previous file.
    last = ModelCheckpoint(dirpath=str(ckpt_dir), filename=Path(LAST_NAME).stem, monitor=None, save_top_k=1,
                           enable_version_counter=False)
    return best, last


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's contents, refusing anything but tensors and plain Python values."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types (UnpicklingError, RuntimeError, ...)
        reason = str(exc).split("\n", 1)[0].strip()
        raise CheckpointError(f"{path}: not a plain-tensor checkpoint, refused ({type(exc).__name__}: "
                              f"{reason[:200]})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a checkpoint (a {type(ckpt).__name__}, not a mapping)")
    return ckpt


def check_resume_checkpoint(path: Path, ckpt_dir: Path) -> None:
    """Refuse a ``last.ckpt`` that holds code or points Lightning at files outside ``ckpt_dir``."""
    ckpt = load_checkpoint(path)
    root = ckpt_dir.resolve()
    for name, state in (ckpt.get("callbacks") or {}).items():
        if not (isinstance(name, str) and name.startswith("ModelCheckpoint") and isinstance(state, dict)):
            continue
        recorded = [state.get(f) for f in _PATH_FIELDS] + list((state.get("best_k_models") or {}).keys())
        for value in recorded:
            if value and not _inside(value, root):
                raise CheckpointError(f"{path}: records checkpoint path {value!r} outside {root}; refused")


def load_best_state_dict(path: str | os.PathLike, ckpt_dir: Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of the best checkpoint, which must lie inside ``ckpt_dir``."""
    if not _inside(path, ckpt_dir.resolve()):
        raise CheckpointError(f"best checkpoint {path} lies outside {ckpt_dir}; refused")
    state = load_checkpoint(path).get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: checkpoint has no state_dict")
    return state


def _inside(path: Any, root: Path) -> bool:
    return isinstance(path, str | os.PathLike) and Path(path).resolve().is_relative_to(root)
