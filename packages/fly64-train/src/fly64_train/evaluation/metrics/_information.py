"""The held-out information score: how much of the data's information about the object a reconstruction holds."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fly64_train.evaluation.metrics._likelihood import poisson_nll


@dataclass(frozen=True)
class InformationScore:
    """A reconstruction's held-out likelihood against the flat object's and the truth's (docs/evaluation.md)."""

    info: float | None
    """``(NLL_B(flat) - NLL_B(recon)) / (NLL_B(flat) - NLL_B(truth))``: 1 = as good as the truth, 0 = no
    better than flat; ``None`` when the truth does not beat flat on B (the data cannot tell them apart)."""
    nll_recon: float
    """Total Poisson NLL of half B under the reconstruction, nats."""
    nll_flat: float
    """Total NLL of half B under the flat object, nats."""
    nll_truth: float
    """Total NLL of half B under the true object, nats."""
    flat_amplitude: float
    """The flat object's constant amplitude: the maximum-likelihood constant on half A."""
    patterns: int
    """Number of patterns scored."""

    @staticmethod
    def flat_constant(total_a: float, patterns: int, *, probe: np.ndarray, intensity_scale: float,
                      fraction: float) -> float:
        """The flat object: the constant amplitude that maximises the likelihood of half A.

        ``a^2 = sum k_A / (n * fraction * s^2 * sum |P|^2)``: by Parseval every constant
        patch's pattern holds ``a^2 sum |P|^2``, and the Poisson ML scale makes the summed
        rate equal the summed counts.
        """
        power = float(np.sum(np.abs(np.asarray(probe).astype(np.complex128)) ** 2))
        return math.sqrt(total_a / (patterns * fraction * float(intensity_scale) ** 2 * power))

    @staticmethod
    def filled(recon: np.ndarray, flat_amplitude: float) -> np.ndarray:
        """``recon`` (complex128) with its NaN pixels (not reconstructed) set to the flat amplitude.

        The fill takes the reconstruction's own mean phase: a global phase is free (no
        pattern depends on it), so a fill at phase 0 would put a step at the edge of a
        reconstruction that sits at another.
        """
        recon = np.asarray(recon)
        missing = np.isnan(recon)
        mean = np.mean(recon[~missing]) if (~missing).any() else 0.0
        fill = flat_amplitude * (np.exp(1j * np.angle(mean)) if abs(mean) > 0 else 1.0)
        return np.where(missing, fill, recon.astype(np.complex128))

    @classmethod
    def from_nll(cls, nll_recon: float, nll_flat: float, nll_truth: float, *, flat_amplitude: float,
                 patterns: int) -> InformationScore:
        """The score from the three total NLLs of half B (``info`` is ``None`` unless truth beats flat)."""
        gap = nll_flat - nll_truth
        info = (nll_flat - nll_recon) / gap if gap > 0 else None
        return cls(info=info, nll_recon=nll_recon, nll_flat=nll_flat, nll_truth=nll_truth,
                   flat_amplitude=flat_amplitude, patterns=patterns)

    def as_json(self) -> dict[str, float | int | None]:
        """The score as the manifest's ``metrics.information`` object; NLL gaps per pattern for reading."""
        per = max(self.patterns, 1)
        return {
            "info": None if self.info is None else round(float(self.info), 6) + 0.0,
            "nll_gap_truth_per_pattern": round((self.nll_flat - self.nll_truth) / per, 6),
            "nll_gap_recon_per_pattern": round((self.nll_flat - self.nll_recon) / per, 6),
            "flat_amplitude": round(self.flat_amplitude, 6),
            "patterns": self.patterns,
        }


def information_score(recon: np.ndarray, truth: np.ndarray, counts_a: np.ndarray, counts_b: np.ndarray, *,
                      probe: np.ndarray, ycoords: np.ndarray, xcoords: np.ndarray, intensity_scale: float,
                      fraction: float = 0.5) -> InformationScore:
    """Score ``recon`` (made from half A) on half B, between the flat object (0) and ``truth`` (1).

    ``recon`` and ``truth`` are complex objects in the positions' frame, used
    as they are: no alignment to the truth (the likelihood itself fixes the
    scale; a global phase does not change it). Pixels of ``recon`` that are NaN
    (nothing reconstructed there) take the flat object's amplitude, at the
    phase of the reconstruction's mean complex value. ``fraction``
    is half A's share of the photons (:func:`split_counts`); half B's rate is
    ``(1 - fraction) * intensity_scale^2 * I``.

    The flat object is the constant amplitude ``a`` that maximises the
    likelihood of half A: ``a^2 = sum k_A / (n * fraction * s^2 * sum |P|^2)``
    (by Parseval every constant patch's pattern holds ``a^2 sum |P|^2``).
    """
    recon, truth = np.asarray(recon), np.asarray(truth)
    if recon.shape != truth.shape or recon.ndim != 2:
        raise ValueError(f"information_score: recon and truth must be two 2-D objects of one shape, got "
                         f"{recon.shape} and {truth.shape}")
    if np.shape(counts_a) != np.shape(counts_b):
        raise ValueError(f"information_score: halves A and B differ in shape: {np.shape(counts_a)} and "
                         f"{np.shape(counts_b)}")
    n = int(np.shape(counts_a)[0])
    amplitude = InformationScore.flat_constant(float(np.sum(counts_a, dtype=np.float64)), n, probe=probe,
                                               intensity_scale=intensity_scale, fraction=fraction)

    def nll(obj: np.ndarray) -> float:
        return float(poisson_nll(obj, counts_b, probe=probe, ycoords=ycoords, xcoords=xcoords,
                                 intensity_scale=intensity_scale, fraction=1.0 - fraction).sum())

    flat = np.full(truth.shape, amplitude, np.complex128)
    return InformationScore.from_nll(nll(InformationScore.filled(recon, amplitude)), nll(flat), nll(truth),
                                     flat_amplitude=amplitude, patterns=n)
