"""The SPEC §8 metric set of one image component, and the call that computes all of it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fly64_train.evaluation.metrics._alignment import wrap
from fly64_train.evaluation.metrics._checks import check_pair, select
from fly64_train.evaluation.metrics._frc import FRC, frc
from fly64_train.evaluation.metrics._ms_ssim import ms_ssim
from fly64_train.evaluation.metrics._pointwise import data_range_of, pearson, psnr
from fly64_train.evaluation.metrics._ssim import ssim

METRIC_NAMES = ("mae", "psnr", "ssim", "ms_ssim", "frc50", "frc_1_7", "pearson")


@dataclass(frozen=True)
class ComponentScores:
    """The SPEC §8 metric set of one image component (amplitude or phase); frozen: a scorecard holds it."""

    mae: float
    """Mean absolute error (phase: of the wrapped difference, radians)."""
    psnr: float
    """dB against the truth's data range; ``inf`` for identical images."""
    ssim: float
    """Mean SSIM, Gaussian window sigma 1.5."""
    ms_ssim: float
    """Multi-scale SSIM with the design's sigma."""
    frc50: float | None
    """FRC 0.5 crossing, cycles/pixel; ``None`` when never crossed."""
    frc_1_7: float | None
    """FRC 1/7 crossing, cycles/pixel; ``None`` when never crossed."""
    pearson: float
    """Pearson correlation of the pixel values."""
    # Not compared: two sets are equal when their scores are (the curve's arrays have no truth value).
    frc_curve: FRC = field(repr=False, compare=False, default=None)  # type: ignore[assignment]
    """The whole FRC curve (saved with the reconstruction)."""

    def as_json(self) -> dict[str, float | None]:
        """The metric set as JSON numbers; non-finite values (PSNR of identical images) become null."""
        out: dict[str, float | None] = {}
        for name in METRIC_NAMES:
            value = getattr(self, name)
            # "+ 0.0" turns a rounded -0.0 into 0.0 in the JSON.
            out[name] = None if value is None or not math.isfinite(value) else round(float(value), 6) + 0.0
        return out


def score_pair(x: np.ndarray, y: np.ndarray, *, ms_ssim_sigma: float = 1.0, data_range: float | None = None,
               wrapped: bool = False, mask: np.ndarray | None = None) -> ComponentScores:
    """Every metric of reconstruction ``x`` against ground truth ``y`` (already aligned).

    ``wrapped`` makes MAE use the wrapped difference (for phases). ``mask`` (bool,
    same shape) selects the scored pixels; the data range is then the truth's on
    the mask.
    """
    check_pair(x, y, mask, "score_pair")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            raise ValueError(f"mask must be a non-empty boolean image of shape {x.shape}")
    rng = data_range_of(y, mask) if data_range is None else data_range
    diff = wrap(x - y) if wrapped else x - y
    curve = frc(x, y, mask=mask)
    return ComponentScores(
        mae=float(np.abs(select(diff, mask)).mean()), psnr=psnr(x, y, rng, mask=mask),
        ssim=ssim(x, y, rng, mask=mask), ms_ssim=ms_ssim(x, y, rng, sigma=ms_ssim_sigma, mask=mask),
        frc50=curve.crossings["frc50"], frc_1_7=curve.crossings["frc_1_7"], pearson=pearson(x, y, mask=mask),
        frc_curve=curve,
    )
