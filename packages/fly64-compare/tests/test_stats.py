"""Seed statistics and the verdict between the two methods."""

from __future__ import annotations

import math

import pytest

from fly64_compare.stats import ITERATIVE, PINN, Summary, summarize, verdict


def test_summary_is_the_mean_and_sample_std_of_the_recorded_values():
    s = summarize([0.5, None, 0.7, float("nan")])
    assert (s.mean, s.n) == (pytest.approx(0.6), 2) and s.std == pytest.approx(math.sqrt(0.02))
    assert summarize([0.4]) == Summary(0.4, None, 1) and summarize([None]) is None
    assert s.text() == "0.600 ± 0.141 (n=2)" and summarize([0.4]).text() == "0.400"


def test_the_better_mean_wins_only_when_its_margin_exceeds_the_seed_spread():
    pinn, iterative = Summary(0.80, 0.02, 3), Summary(0.70, 0.03, 3)
    v = verdict(pinn, iterative)
    spread = math.sqrt(0.02**2 + 0.03**2)
    assert v.winner == PINN and v.margin == pytest.approx(0.10) and v.spread == pytest.approx(spread)
    assert v.text() == f"PINN +0.100 ({0.10 / spread:.1f}x spread)"
    close = verdict(Summary(0.80, 0.05, 3), Summary(0.75, 0.04, 3))
    assert close.winner is None and close.within_spread and close.text().startswith("within spread")
    # A one-seed side adds no spread; the other side's replicates still measure it.
    assert verdict(Summary(0.70, None, 1), Summary(0.80, 0.01, 3)).winner == ITERATIVE


def test_lower_is_better_metrics_and_single_seeds():
    v = verdict(Summary(0.10, None, 1), Summary(0.20, None, 1), lower_is_better=True)
    assert v.winner == PINN and v.spread is None and v.text() == "PINN +0.100 (1 seed, spread unknown)"
    assert verdict(Summary(0.10, None, 1), None).text() == "n/a"
    assert verdict(Summary(0.3, None, 1), Summary(0.3, None, 1)).text() == "tie"


def test_among_three_methods_the_best_wins_against_the_runner_up_not_the_last():
    from fly64_compare.stats import PINN_REFINE, verdict_among

    three = ((PINN, Summary(0.60, None, 1)), (PINN_REFINE, Summary(0.75, None, 1)), (ITERATIVE, Summary(0.70, None, 1)))
    v = verdict_among(three)
    assert v.winner == PINN_REFINE and v.margin == pytest.approx(0.05)  # over the iterative, not over PINN
    assert verdict_among(three, lower_is_better=True).winner == PINN
    assert verdict_among(three, lower_is_better=True).margin == pytest.approx(0.10)
    # The seed spread is the two leaders' own.
    spread = verdict_among(((PINN, Summary(0.8, 0.03, 3)), (PINN_REFINE, Summary(0.7, 0.04, 3)),
                            (ITERATIVE, Summary(0.1, 0.5, 3))))
    assert spread.spread == pytest.approx(0.05) and spread.winner == PINN
    assert verdict_among(((PINN, Summary(0.8, None, 1)), (PINN_REFINE, None))).text() == "n/a"
