"""Fourier ring correlation."""

from __future__ import annotations

import numpy as np
import pytest

from fly64_train.evaluation import metrics as M


def _components(obj: np.ndarray) -> dict[str, np.ndarray]:
    return {"amplitude": np.abs(obj), "phase": np.angle(obj)}


def test_frc_of_an_image_with_itself_never_crosses(obj):
    for img in _components(obj).values():
        curve = M.frc(img, img.copy())
        assert np.all(curve.curve > 1 - 1e-9)
        assert curve.frequency[0] > 0 and curve.frequency[-1] == pytest.approx(0.5)
        assert curve.crossing(0.5) is None and curve.crossing(1 / 7) is None
