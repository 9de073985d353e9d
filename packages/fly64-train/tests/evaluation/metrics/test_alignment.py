"""Alignment: a global amplitude scale and a phase offset and ramp are removed, a real error is not."""

from __future__ import annotations

import numpy as np
import pytest

from fly64_train.evaluation import metrics as M

SIZE = 160


def test_amplitude_metrics_ignore_a_global_scale(obj):
    amp = np.abs(obj)
    for factor in (0.37, 1.0, 4.2):
        aligned, scale = M.align_amplitude(factor * amp, amp)
        assert scale == pytest.approx(1 / factor, rel=1e-12)
        s = M.score_pair(aligned, amp)
        assert s.ssim == pytest.approx(1.0, abs=1e-9) and s.mae < 1e-12 and s.frc50 is None


@pytest.mark.parametrize("offset, gy, gx", [(0.0, 0.0, 0.0), (2.9, 0.0, 0.0), (-1.3, 0.07, -0.11),
                                            (0.4, -0.2, 0.15)])
def test_phase_metrics_ignore_a_global_offset_and_a_linear_ramp(obj, offset, gy, gx):
    # The steeper ramps wrap the phase many times across the image.
    phase = np.angle(obj)
    rows, cols = np.mgrid[:SIZE, :SIZE]
    shifted = M.wrap(phase + offset + gy * rows + gx * cols)
    aligned, plane = M.align_phase(shifted, phase)
    assert np.abs(aligned - phase).max() < 1e-6
    assert (plane.gy, plane.gx) == (pytest.approx(-gy, abs=1e-9), pytest.approx(-gx, abs=1e-9))
    s = M.score_pair(aligned, phase, wrapped=True)
    assert s.mae < 1e-6 and s.ssim == pytest.approx(1.0, abs=1e-9) and s.pearson == pytest.approx(1.0, abs=1e-9)
    assert s.frc50 is None


def test_phase_alignment_does_not_hide_a_real_error(obj):
    phase = np.angle(obj)
    wrong = phase.copy()
    wrong[40:80, 40:80] += 0.5  # local error: no plane can remove it
    aligned, _ = M.align_phase(wrong, phase)
    assert M.score_pair(aligned, phase, wrapped=True).mae > 0.01
