"""With "PINN + refine" in a cell the winner stays PINN against the iterative method; the refinement gets
a verdict of its own against the iterative method, n/a on its own, and mixed refine settings are no mean.

Typed cells built from recorded-shape ``metrics`` documents (``Scores.from_metrics``) and the real
:func:`refined_cell`; the study-level checks are in test_refine_method.py.
"""

from __future__ import annotations

import csv
import io
import math

import pytest

from fly64_compare.cells import MIXED, OK, Cell, MethodCell, Replicate, refined_cell
from fly64_compare.stats import ITERATIVE, PINN, PINN_REFINE
from fly64_compare.table import (
    CSV_COLUMNS,
    METRICS,
    cell_notes,
    cell_refine_verdict,
    cell_verdict,
    csv_text,
    markdown,
)
from fly64_manifest.scores import Scores

SSIM = next(m for m in METRICS if m.key == "phase.ssim")
FRC = next(m for m in METRICS if m.key == "phase.frc50")
INFO = next(m for m in METRICS if m.key == "information.info")

#: ``comparison.csv``'s columns before the refine verdict was added: readers by name or position keep them.
EARLIER_COLUMNS = (
    "dose", "view", "metric", "pinn_state", "pinn_mean", "pinn_std", "pinn_n", "iterative_state", "iterative_mean",
    "iterative_std", "iterative_n", "floor_mean", "winner", "margin", "spread", "within_spread", "pinn_s_per_1000",
    "pinn_device", "iterative_s_per_1000", "iterative_device", "pinn_above_floor", "iterative_above_floor",
    "refine_state", "refine_mean", "refine_std", "refine_n", "refine_s_per_1000", "refine_fine_tuning_s_per_1000",
    "refine_device", "refine_above_floor")


def _metrics(ssim: float, *, frc50: float | None = -1.0, info: bool = True) -> dict:
    """A recorded ``metrics`` object; ``frc50`` follows ``ssim`` (half of it) unless given (``None``: null)."""
    doc = {"phase": {"ssim": ssim, "pearson": ssim, "frc50": ssim / 2 if frc50 == -1.0 else frc50},
           "amplitude": {"ssim": ssim}, "floor": {"phase": {"ssim": 0.1}, "amplitude": {"ssim": 0.1}}}
    if info:
        doc["information"] = {"info": ssim, "patterns": 64}
    return doc


def _pinn(values: list[float], refined: list[float | None], *, steps: list[int] | None = None,
          refine_frc50: float | None = -1.0, refine_info: bool = True) -> MethodCell:
    """PINN replicates (seeds 0, 1, ...), each with a refine block where ``refined`` has a value."""
    replicates = []
    for seed, (value, gain) in enumerate(zip(values, refined, strict=True)):
        doc = _metrics(value)
        if gain is not None:
            doc["refine"] = {**_metrics(gain, frc50=refine_frc50, info=refine_info),
                             "refine": {"steps": (steps or [3] * len(values))[seed], "lr": 1e-3}}
        replicates.append(Replicate(seed, Scores.from_metrics(doc), None, None))
    return MethodCell(PINN, OK, tuple(replicates))


def _iterative(values: list[float]) -> MethodCell:
    return MethodCell(ITERATIVE, OK, tuple(Replicate(10 + i, Scores.from_metrics(_metrics(v)), None, None)
                                           for i, v in enumerate(values)))


def _cell(pinn: MethodCell, iterative: MethodCell) -> Cell:
    return Cell(1000.0, "baseline", pinn, iterative, refined_cell(pinn))


def _rows(cells: list[Cell]) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(csv_text(cells))))


def _md(cells: list[Cell]) -> str:
    return markdown(cells, sources=["test"], notes=cell_notes(cells), figures=[])


def test_a_refined_cell_still_names_pinn_against_iterative_and_the_refinement_gets_its_own_verdict():
    # PINN 0.80 ± 0.05, refine 0.84 ± 0.05, iterative 0.50 ± 0.02: PINN and refine are close, but the
    # study's answer is PINN over iterative by 0.30, far beyond the spread.
    cell = _cell(_pinn([0.75, 0.80, 0.85], [0.79, 0.84, 0.89]), _iterative([0.48, 0.50, 0.52]))
    v = cell_verdict(cell, SSIM)
    assert v.winner == PINN and v.margin == pytest.approx(0.30)
    assert v.spread == pytest.approx(math.sqrt(0.05**2 + 0.02**2))
    r = cell_refine_verdict(cell, SSIM)
    assert r.winner == PINN_REFINE and r.margin == pytest.approx(0.34)
    row = next(r for r in _rows([cell]) if r["metric"] == "phase.ssim")
    assert (row["winner"], float(row["margin"])) == (PINN, pytest.approx(0.30))
    assert (row["refine_winner"], float(row["refine_margin"])) == (PINN_REFINE, pytest.approx(0.34))
    assert row["within_spread"] == "false" == row["refine_within_spread"]
    # Refine vs iterative: independent replicates (the iterative seeds are its own), like PINN vs iterative.
    assert float(row["refine_spread"]) == pytest.approx(math.sqrt(0.05**2 + 0.02**2))


def test_plain_pinn_losing_to_iterative_is_reported_even_when_the_refinement_wins():
    cell = _cell(_pinn([0.60], [0.75]), _iterative([0.70]))
    assert cell_verdict(cell, SSIM).winner == ITERATIVE and cell_verdict(cell, SSIM).margin == pytest.approx(0.10)
    assert cell_refine_verdict(cell, SSIM).winner == PINN_REFINE
    assert cell_refine_verdict(cell, SSIM).margin == pytest.approx(0.05)
    md = _md([cell])
    winners = md.split("## Winner per metric")[1].split("##")[0]
    row = next(line for line in winners.splitlines() if line.startswith("| 1000 |"))
    assert "iterative +0.100 (1 seed, spread unknown)" in row and PINN_REFINE not in row
    refined = md.split("## PINN + refine against the iterative method")[1].split("##")[0]
    assert "PINN + refine +0.050 (1 seed, spread unknown)" in refined
    ssim = md.split("## phase SSIM")[1].split("##")[0]
    assert "| winner | PINN + refine vs iterative |" in ssim
    assert ssim.rstrip().splitlines()[-1].endswith(
        "| iterative +0.100 (1 seed, spread unknown) | PINN + refine +0.050 (1 seed, spread unknown) |")


def test_a_metric_the_refine_block_lacks_leaves_the_main_verdict_and_makes_only_the_refine_one_na():
    # frc50 recorded as null and no information score: an older refine block.
    cell = _cell(_pinn([0.60, 0.62], [0.65, 0.66], refine_frc50=None, refine_info=False), _iterative([0.40, 0.41]))
    for metric in (FRC, INFO):
        assert cell_verdict(cell, metric).winner is not None, metric
        assert cell_refine_verdict(cell, metric).text() == "n/a"
    rows = {r["metric"]: r for r in _rows([cell])}
    for key in ("phase.frc50", "information.info"):
        assert rows[key]["winner"] in (PINN, ITERATIVE) and rows[key]["margin"] != "", rows[key]
        assert rows[key]["refine_winner"] == rows[key]["refine_margin"] == rows[key]["refine_within_spread"] == ""
    assert rows["phase.ssim"]["refine_winner"] == PINN_REFINE
    md = _md([cell])
    frc = md.split("## phase FRC 0.5")[1].split("##")[0].rstrip().splitlines()[-1]
    assert "did not record it" in frc.split(" | ")[-1] and "PINN + refine did not record it" in frc
    assert frc.split(" | ")[-2].startswith(("PINN +", "iterative +"))  # the main winner is there
    assert "did not record" not in md.split("## Winner per metric")[1].split("##")[0]


def test_csv_keeps_its_earlier_columns_and_appends_the_refine_verdict():
    assert CSV_COLUMNS[:len(EARLIER_COLUMNS)] == EARLIER_COLUMNS
    assert CSV_COLUMNS[len(EARLIER_COLUMNS):] == ("refine_winner", "refine_margin", "refine_spread",
                                                  "refine_within_spread")
    unrefined = Cell(10000.0, "baseline", _pinn([0.7], [None]), _iterative([0.6]), None)
    assert unrefined.refined is None
    row = next(r for r in _rows([unrefined]) if r["metric"] == "phase.ssim")
    assert row["winner"] == PINN and all(row[c] == "" for c in CSV_COLUMNS[len(EARLIER_COLUMNS):])


def test_replicates_refined_with_differing_settings_are_no_one_method():
    pinn = _pinn([0.60, 0.62, 0.61], [0.70, 0.72, 0.90], steps=[3, 3, 300])
    cell = _cell(pinn, _iterative([0.50, 0.52]))
    assert cell.refined.state == MIXED and cell.refined.replicates == ()
    assert cell.refined.notes == ("not compared: its replicates were refined with differing settings "
                                  "(3 steps, lr 0.001 (seeds 0, 1); 300 steps, lr 0.001 (seed 2)); "
                                  "`fly64-train report` shows one row per setting",)
    assert cell_verdict(cell, SSIM).winner == PINN  # the main comparison does not depend on it
    assert cell_refine_verdict(cell, SSIM).text() == "n/a"
    rows = _rows([cell])
    assert all(r["refine_state"] == MIXED and r["refine_mean"] == "" and r["refine_winner"] == "" for r in rows)
    md = _md([cell])
    assert "no comparison: PINN + refine mixed settings" in md and "300 steps, lr 0.001 (seed 2)" in md
    assert "| 1000 | baseline | yes |" in md  # PINN and iterative are compared


def test_a_refinement_of_fewer_seeds_than_pinn_says_which_seeds_its_mean_covers():
    cell = _cell(_pinn([0.60, 0.62, 0.61], [0.70, None, 0.72]), _iterative([0.50]))
    assert cell.refined.state == OK and [r.seed for r in cell.refined.replicates] == [0, 2]
    assert cell.refined.notes == ("2 of 3 scored PINN jobs refined: its mean covers seeds 0, 2, "
                                  "PINN's seeds 0, 1, 2",)
    assert "PINN + refine: 2 of 3 scored PINN jobs refined" in _md([cell])
    assert cell.refined.summary("phase", "ssim").n == 2
