"""Shape checks shared by every metric, with messages that say what to pass instead."""

from __future__ import annotations

import numpy as np


def check_pair(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None, metric: str) -> None:
    """Refuse anything but two 2-D images of one shape (and a mask of that shape)."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"{metric}: the reconstruction and the truth must be two 2-D images of one shape, got "
                         f"{x.shape} and {y.shape}; score amplitude and phase separately, cropped to one region")
    if mask is not None and np.shape(mask) != x.shape:
        raise ValueError(f"{metric}: mask must have the images' shape {x.shape}, got {np.shape(mask)}")


def select(a: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The scored pixels of ``a`` as float64 (all of them without a mask)."""
    a = np.asarray(a, dtype=np.float64)
    return a if mask is None else a[mask]
