"""Whether a trained job diverged: its loss went non-finite or froze, or its model predicts nothing.

A learning rate far too large (``--lr 1e30``) saturates the amplitude decoder in one
step: the model then outputs zero amplitude for every pattern, no gradient flows,
and the validation loss repeats to the last bit every epoch. Such a job runs to
its end without an error, so the runner looks at what it left, framework-free:

* the per-epoch losses of its CSV log (torch: ``train_loss``/``val_loss``; Keras:
  ``loss``/``val_loss``): a non-finite value, or a monitored loss identical over
  two or more epochs;
* when it was evaluated, the stitched test reconstruction (``reconstruction.npz``):
  non-finite, or zero everywhere.

A job found so is recorded as ``diverged`` with the reason; its bundle stays for inspection.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from fly64_train.evaluation.evaluate import RECONSTRUCTION_NPZ

#: Column of the training loss in each backend's CSV log.
_TRAIN_COLUMNS = ("train_loss", "loss")


def divergence(job_dir: str | os.PathLike, log_path: str | None, monitor: str,
               evaluated_dir: str | os.PathLike | None = None) -> str | None:
    """One line saying how the job diverged, or ``None`` when nothing says it did."""
    job_dir = Path(job_dir)
    reason = _loss_divergence(job_dir / log_path, monitor) if log_path else None
    if reason is None and evaluated_dir is not None:
        reason = _output_divergence(Path(evaluated_dir) / RECONSTRUCTION_NPZ)
    return reason


def _loss_divergence(path: Path, monitor: str) -> str | None:
    if path.suffix != ".csv" or not path.is_file():
        return None
    monitored: dict[int, float] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            epoch = _number(row.get("epoch"))
            for column in (monitor, *_TRAIN_COLUMNS):
                value = _number(row.get(column))
                if value is not None and not math.isfinite(value):
                    return f"the {column} became {value} in epoch {int(epoch or 0)} (non-finite loss)"
            value = _number(row.get(monitor))
            if value is None and monitor == "train_loss":
                value = _number(row.get("loss"))
            if value is not None and epoch is not None:
                monitored[int(epoch)] = value
    values = list(monitored.values())
    if len(values) >= 2 and len(set(values)) == 1:
        return (f"the {monitor} stayed at {values[0]:.6g} for all {len(values)} epochs (frozen: the model "
                "stopped learning; try a smaller --lr)")
    return None


def _output_divergence(path: Path) -> str | None:
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as npz:
        if "stitched" not in npz.files:
            return None
        stitched = npz["stitched"]
    if not np.all(np.isfinite(stitched)):
        return "the reconstruction of the test split is not finite (the model outputs NaN or infinity)"
    if stitched.size and not np.any(np.abs(stitched) > 0):
        return ("the model outputs zero amplitude for every test pattern (an all-zero object: the amplitude "
                "decoder saturated; try a smaller --lr)")
    return None


def _number(text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    try:
        return float(text)
    except ValueError:
        return None
