"""Seed statistics of one score and the verdict between two methods, measured against the seed spread."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """One score over the seeds of a cell: mean, sample standard deviation (``None`` for one seed), count."""

    mean: float
    std: float | None
    n: int

    def text(self, digits: int = 3) -> str:
        """``0.812 ± 0.010 (n=3)``, or ``0.812`` for one seed."""
        if self.std is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f} (n={self.n})"


def summarize(values: Iterable[float | None]) -> Summary | None:
    """:class:`Summary` of the recorded (finite) values; ``None`` when there are none.

    The standard deviation is the sample one (``ddof=1``), as the Phase E report gives it.
    """
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not kept:
        return None
    mean = math.fsum(kept) / len(kept)
    if len(kept) == 1:
        return Summary(mean, None, 1)
    var = math.fsum((v - mean) ** 2 for v in kept) / (len(kept) - 1)
    return Summary(mean, math.sqrt(var), len(kept))


#: The methods, as named in every table and figure. "PINN + refine" is the PINN's model fine-tuned on the
#: test split's own patterns (``metrics.refine``); a cell has it only where the evaluation refined.
PINN = "PINN"
PINN_REFINE = "PINN + refine"
ITERATIVE = "iterative"


@dataclass(frozen=True)
class Verdict:
    """Which of two methods scored better on one metric of one cell, and whether the seeds can tell.

    A cell's main verdict is always PINN against the iterative method (:func:`verdict`); where the cell
    has "PINN + refine", a second one puts it against the iterative method (:func:`refine_verdict`).

    Attributes
    ----------
    winner : str or None
        The best method's name (:data:`PINN`, :data:`PINN_REFINE`, :data:`ITERATIVE`); ``None``
        when its margin over the runner-up is within the seed spread, the two are equal, or a
        value is missing.
    margin : float or None
        How much better the best mean is than the runner-up's (always >= 0, in the metric's
        unit); ``None`` when a value is missing.
    spread : float or None
        The seed spread the margin is measured against: ``sqrt(std_best^2 + std_runner_up^2)``
        (the standard deviation of a difference of two independent replicates: the iterative
        method's seeds are its own, not paired with the PINN's); a one-seed
        side contributes 0; ``None`` when neither side has several seeds.
    """

    winner: str | None
    margin: float | None
    spread: float | None

    @property
    def within_spread(self) -> bool:
        return self.margin is not None and self.spread is not None and self.margin <= self.spread

    def text(self, digits: int = 3) -> str:
        """What a table cell says: ``PINN +0.120 (4.1x spread)``, ``within spread``, ``PINN +0.120 (1 seed)``."""
        if self.margin is None:
            return "n/a"
        if self.within_spread:
            return f"within spread (Δ {self.margin:.{digits}f} ≤ {self.spread:.{digits}f})"
        if self.winner is None:
            return "tie"
        if self.spread is None:
            return f"{self.winner} +{self.margin:.{digits}f} (1 seed, spread unknown)"
        if self.spread == 0:
            return f"{self.winner} +{self.margin:.{digits}f} (seeds agree exactly)"
        return f"{self.winner} +{self.margin:.{digits}f} ({self.margin / self.spread:.1f}x spread)"


def verdict(pinn: Summary | None, iterative: Summary | None, *, lower_is_better: bool = False) -> Verdict:
    """PINN against the iterative method on one metric (larger is better unless ``lower_is_better``)."""
    return verdict_among(((PINN, pinn), (ITERATIVE, iterative)), lower_is_better=lower_is_better)


def refine_verdict(refined: Summary | None, iterative: Summary | None, *, lower_is_better: bool = False) -> Verdict:
    """"PINN + refine" against the iterative method: beside, never instead of, :func:`verdict`.

    Its own ``n/a`` when "PINN + refine" lacks the metric; the main verdict does not depend on it.
    """
    return verdict_among(((PINN_REFINE, refined), (ITERATIVE, iterative)), lower_is_better=lower_is_better)


def verdict_among(methods: Sequence[tuple[str, Summary | None]], *, lower_is_better: bool = False) -> Verdict:
    """The best of several methods' summaries of one metric, measured against the runner-up.

    Any missing summary gives no verdict (``n/a``): the table names the method that lacks it. The
    comparison calls it with two methods only (:func:`verdict`, :func:`refine_verdict`): among three,
    the best-against-runner-up verdict would hide how PINN did against the iterative method.
    """
    if len(methods) < 2 or any(summary is None for _, summary in methods):
        return Verdict(None, None, None)
    sign = -1.0 if lower_is_better else 1.0
    ranked = sorted(methods, key=lambda item: sign * item[1].mean, reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    diff = sign * (top.mean - second.mean)
    stds = [s.std for s in (top, second) if s.std is not None]
    spread = math.sqrt(math.fsum(s * s for s in stds)) if stds else None
    margin = abs(diff)
    if diff == 0 or (spread is not None and margin <= spread):
        return Verdict(None, margin, spread)
    return Verdict(best, margin, spread)
