"""Score a stitched reconstruction against the ground truth: SPEC §8 steps 3-6, flat floor included.

The one scorer of the study: Phase E's evaluation (:mod:`fly64_train.evaluation.evaluate`)
and Phase F's iterative reconstructions (fly64-iterative) both call
:func:`score_stitched`, so the two methods are scored by the same code. Framework-free
(numpy and scikit-image): it imports nothing of the backend seam, so a package that
must not reach a deep-learning framework through fly64-train can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fly64_train.evaluation.metrics import ComponentScores, PhaseAlignment, align_amplitude, align_phase, score_pair
from fly64_train.evaluation.scorecard import FRC_UNIT, AlignmentRecord, FlatFloor, Scorecard

__all__ = ["FRC_UNIT", "Evaluation", "ScoringConfig", "bounding_box", "coverage_mask", "flat_floor",
           "score_stitched"]


@dataclass
class ScoringConfig:
    """How to score (the scoring half of ``EvaluationConfig``, whose fields of these names it reads)."""

    ms_ssim_sigma: float = 1.0
    """Gaussian window sigma of MS-SSIM (the design's ``metrics_config``)."""
    coverage_fraction: float = 0.1
    """Threshold of the coverage mask, as a fraction of one footprint's peak weight."""

    def check(self) -> None:
        """Refuse values no scoring can use, naming the field."""
        if not self.ms_ssim_sigma > 0:
            raise ValueError(f"ms_ssim_sigma must be positive, got {self.ms_ssim_sigma}")
        if not 0 < self.coverage_fraction <= 1:
            raise ValueError(f"coverage_fraction must be in (0, 1], got {self.coverage_fraction}")


@dataclass
class Evaluation:
    """One reconstruction, aligned and scored on its region (arrays are region-sized).

    The arrays feed the product and the figure; the numbers are :meth:`scorecard`. A producer adds
    what the scorer cannot know (the reconstruction's time, its information score, a refinement)
    to the scorecard, never to this object.
    """

    amplitude: np.ndarray
    phase: np.ndarray
    amplitude_true: np.ndarray
    phase_true: np.ndarray
    covered: np.ndarray
    stitched: np.ndarray
    region: tuple[int, int, int, int]
    amplitude_scores: ComponentScores
    phase_scores: ComponentScores
    amplitude_scale: float
    phase_alignment: PhaseAlignment
    shift_px: tuple[float, float]
    floor: FlatFloor
    """The flat object's scores on the same covered pixels (:func:`flat_floor`)."""

    @property
    def coverage(self) -> float:
        return float(self.covered.mean())

    def scorecard(self) -> Scorecard:
        """The scorer's numbers, typed (no timing, information score or refinement yet)."""
        plane = self.phase_alignment
        return Scorecard(
            amplitude=self.amplitude_scores, phase=self.phase_scores, coverage=self.coverage, region=self.region,
            alignment=AlignmentRecord(float(self.amplitude_scale), float(plane.offset),
                                      (float(plane.gy), float(plane.gx)), self.shift_px),
            floor=self.floor)

    def metrics(self) -> dict[str, Any]:
        """:meth:`scorecard` as the manifest's ``metrics`` JSON (schema ``training_manifest`` #/$defs/metrics)."""
        return self.scorecard().to_json()


def coverage_mask(weight: np.ndarray, footprint_peak: float, fraction: float = 0.1) -> np.ndarray:
    """Pixels lit by the scan with at least ``fraction`` of one footprint's peak weight."""
    return weight >= fraction * footprint_peak


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(row0, row1, col0, col1)`` (half-open) of the True pixels of ``mask``."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("no pixel is covered by the scan: nothing to evaluate")
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def score_stitched(stitched: np.ndarray, weight: np.ndarray, truth: np.ndarray, footprint_peak: float,
                   cfg: ScoringConfig | Any = None) -> Evaluation:
    """Crop, align, fill and score a stitched object against the ground truth (steps 3-6)."""
    from skimage.registration import phase_cross_correlation

    cfg = cfg or ScoringConfig()  # an EvaluationConfig works too: only these two fields are read
    covered_full = coverage_mask(weight, footprint_peak, cfg.coverage_fraction)
    r0, r1, c0, c1 = bounding_box(covered_full)
    crop = (slice(r0, r1), slice(c0, c1))
    image, ref, covered = stitched[crop], truth[crop], covered_full[crop]
    amp_true = np.abs(ref).astype(np.float64)
    phase_true = np.angle(ref).astype(np.float64)

    amp, scale = align_amplitude(np.abs(image), amp_true, covered)
    phase, plane = align_phase(np.angle(image), phase_true, covered)
    amp = np.where(covered, amp, amp[covered].mean())
    phase = np.where(covered, phase, phase[covered].mean())

    shift, _, _ = phase_cross_correlation(amp_true, amp, upsample_factor=10, normalization=None)
    floor = flat_floor(amp_true, phase_true, covered, cfg)
    return Evaluation(
        amplitude=amp, phase=phase, amplitude_true=amp_true, phase_true=phase_true, covered=covered,
        stitched=image.astype(np.complex64), region=(r0, r1, c0, c1),
        amplitude_scores=score_pair(amp, amp_true, ms_ssim_sigma=cfg.ms_ssim_sigma, mask=covered),
        phase_scores=score_pair(phase, phase_true, ms_ssim_sigma=cfg.ms_ssim_sigma, wrapped=True, mask=covered),
        amplitude_scale=scale, phase_alignment=plane, shift_px=(float(shift[0]), float(shift[1])), floor=floor,
    )


def flat_floor(amp_true: np.ndarray, phase_true: np.ndarray, covered: np.ndarray,
           cfg: ScoringConfig | Any) -> FlatFloor:
    """Scores of a structureless object (constant amplitude and phase) put through the same alignment.

    The alignment fits a scale and a phase plane to the truth, so even a flat
    reconstruction scores above zero (the best plane through the true phase);
    this is that floor, for reading the real scores against. It is scored on
    the same covered pixels as the reconstruction.
    """
    flat = np.ones_like(amp_true)
    amp, _ = align_amplitude(flat, amp_true, covered)
    phase, _ = align_phase(np.zeros_like(phase_true), phase_true, covered)
    return FlatFloor(score_pair(amp, amp_true, ms_ssim_sigma=cfg.ms_ssim_sigma, mask=covered),
                     score_pair(phase, phase_true, ms_ssim_sigma=cfg.ms_ssim_sigma, wrapped=True, mask=covered))
