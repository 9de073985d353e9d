"""The framework-free pieces of a finished job's record, the same for every backend.

What a bundle records about the job that trained it (:func:`bundle_provenance`), a loss
as the manifest takes it (:func:`finite`), and a path as the job folder sees it
(:func:`job_relative`). Both backends' training code calls these, so a torch and a
TensorFlow bundle or result cannot come to record different things.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fly64_train.training.digest import file_sha256

if TYPE_CHECKING:
    from fly64_train.training.config import TrainConfig


def finite(value: Any) -> float | None:
    """``value`` as a float, or ``None`` when it is missing or not finite (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def job_relative(path: str | os.PathLike | None, job_dir: str | os.PathLike) -> str | None:
    """``path`` relative to the job folder with ``/`` separators (``None`` stays ``None``)."""
    if not path:
        return None
    return os.path.relpath(Path(path), Path(job_dir)).replace(os.sep, "/")


def bundle_provenance(cfg: TrainConfig, *, dose: Any, epochs_completed: int, monitor: str,
                      best_score: Any) -> dict[str, Any]:
    """The bundle manifest's ``provenance``: the data the job trained on and how training ended.

    ``dose`` is the training file's recorded dose, ``monitor`` the monitored loss's name and
    ``best_score`` its best value (``None`` when there is none or it is not finite).
    """
    return {
        "train_path": str(cfg.train_path), "test_path": cfg.test_path,
        "train_sha256": file_sha256(cfg.train_path), "dose": dose,
        "epochs_completed": int(epochs_completed), "monitor": monitor, "best_score": finite(best_score),
    }
