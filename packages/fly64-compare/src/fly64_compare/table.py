"""``comparison.md`` and ``comparison.csv``: the methods side by side per dose x view and metric.

PINN and the iterative method are in every cell; "PINN + refine" has columns only where some cell of
the study recorded a refinement (``comparison.csv`` always has its columns, empty without one).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from fly64_compare.cells import OK, Cell, MethodCell
from fly64_compare.stats import Summary, Verdict, verdict_among
from fly64_manifest.scores import LOWER_IS_BETTER


@dataclass(frozen=True)
class Metric:
    """One compared score: ``component`` (``amplitude``/``phase``/``information``) and its name."""

    component: str
    name: str
    label: str
    """As the table and figures title it."""

    @property
    def lower_is_better(self) -> bool:
        return self.name in LOWER_IS_BETTER

    @property
    def key(self) -> str:
        return f"{self.component}.{self.name}"


#: The compared scores, in table order (phase first: the study emphasises it). FRC is the 0.5 crossing.
METRICS: tuple[Metric, ...] = (
    Metric("phase", "ssim", "phase SSIM"),
    Metric("phase", "pearson", "phase Pearson"),
    Metric("phase", "psnr", "phase PSNR (dB)"),
    Metric("phase", "frc50", "phase FRC 0.5 (cycles/px)"),
    Metric("amplitude", "ssim", "amplitude SSIM"),
    Metric("amplitude", "pearson", "amplitude Pearson"),
    Metric("amplitude", "psnr", "amplitude PSNR (dB)"),
    Metric("amplitude", "frc50", "amplitude FRC 0.5 (cycles/px)"),
    Metric("information", "info", "information score"),
)


def metrics_present(cells: Sequence[Cell]) -> tuple[Metric, ...]:
    """The metrics some replicate of some cell recorded (the information score only where it was computed)."""
    return tuple(m for m in METRICS if any(
        r.scores.metric(m.component, m.name) is not None for c in cells for mc in c.methods for r in mc.replicates))


def cell_verdict(cell: Cell, metric: Metric) -> Verdict:
    """The best of the cell's methods ("PINN + refine" included where present) against the runner-up."""
    return verdict_among([(m.method, m.summary(metric.component, metric.name)) for m in cell.methods],
                         lower_is_better=metric.lower_is_better)


def above_floor(cell: Cell, method: MethodCell, metric: Metric) -> bool | None:
    """Whether ``method``'s mean beats the cell's flat floor (``None`` when either is missing)."""
    summary, floor = method.summary(metric.component, metric.name), cell.floor(metric.component, metric.name)
    if summary is None or floor is None:
        return None
    return summary.mean < floor.mean if metric.lower_is_better else summary.mean > floor.mean


def _value(cell: Cell, method: MethodCell, metric: Metric) -> str:
    """A method's value in a table cell (marked when it does not beat the flat floor), or why it has none."""
    if method.state != OK:
        return method.state
    summary = method.summary(metric.component, metric.name)
    if summary is None:
        return "not recorded"
    return summary.text() + (" (≤ floor)" if above_floor(cell, method, metric) is False else "")


def _floor(summary: Summary | None) -> str:
    return "—" if summary is None else summary.text()


def _missing(cell: Cell) -> str | None:
    """Why a cell has no comparison (``iterative failed``, ``PINN skipped``), or ``None`` when both have scores."""
    missing = [f"{m.method} {m.state}" for m in cell.methods if m.state != OK]
    return ", ".join(missing) or None


def _verdict_text(cell: Cell, metric: Metric) -> str:
    missing = _missing(cell)
    return f"no comparison: {missing}" if missing else _scored_verdict(cell, metric)


def _scored_verdict(cell: Cell, metric: Metric) -> str:
    """The verdict of a cell both methods scored; names the method that did not record this metric."""
    lacking = [m.method for m in cell.methods if m.summary(metric.component, metric.name) is None]
    if lacking:
        return " and ".join(lacking) + " did not record it"
    v = cell_verdict(cell, metric)
    winner = next((m for m in cell.methods if m.method == v.winner), None)
    # A method that wins while no better than a structureless object has recovered nothing: say so.
    if winner is not None and above_floor(cell, winner, metric) is False:
        return v.text() + ", but not above the flat floor"
    return v.text()


def _time(method: MethodCell | None) -> str:
    if method is None:  # no refinement in this cell: nothing to say
        return ""
    if method.state != OK:
        return method.state
    summary = method.time_per_1000()
    if summary is None:
        return "not recorded"
    tuning = method.fine_tuning_per_1000()
    return f"{summary.text(2)} s on {method.devices()}" + ("" if tuning is None else
                                                         f" (fine-tuning {tuning.text(2)} s)")


def _refined_value(cell: Cell, metric: Metric) -> list[str]:
    return [] if cell.refined is None else [_value(cell, cell.refined, metric)]


def _row(values: Sequence[str]) -> str:
    return "| " + " | ".join(v.replace("|", "/") for v in values) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def dose_label(dose: float) -> str:
    return f"{dose:g}"


def markdown(cells: Sequence[Cell], *, sources: Sequence[str], notes: Sequence[str], figures: Sequence[str]) -> str:
    """The whole ``comparison.md``."""
    metrics = metrics_present(cells)
    refine = any(c.refined is not None for c in cells)
    lines = ["# PtychoPINN against the iterative baseline", "",
             "Read from " + "; ".join(sources) + ".", "",
             "Each value is the mean ± sample standard deviation over seeds (a single seed shows its value "
             "alone). The winner is the best mean; its margin over the runner-up is measured against the "
             "seed spread sqrt(std_best² + std_runner-up²): a margin no larger than it reads *within spread*, "
             "and with one seed per method there is no spread to measure it against. The floor is the same "
             "score of a flat (structureless) object put through the same alignment; a value marked (≤ floor) "
             "recovered nothing, and a winner not above the floor says so. MAE-like scores are not shown: "
             "every score shown is better when larger.", ""]
    if refine:
        lines += ["*PINN + refine* is the trained model fine-tuned without labels on each test scan's own "
                  "patterns before predicting it (`fly64-train evaluate --refine-steps`); it is a method of its "
                  "own where it was run, competes for the winner, and its time is fine-tuning plus prediction. "
                  "Cells without it show nothing in its columns.", ""]
    refine_time = ["PINN + refine s / 1k patterns"] if refine else []
    lines += ["## Winner per metric", ""]
    # A cell one method lacks says so once, in "compared", instead of in every metric's column.
    header = ["dose", "view", "compared", *(m.label for m in metrics), "PINN s / 1k patterns", *refine_time,
              "iterative s / 1k patterns"]
    rows = [[dose_label(c.dose), c.view, f"no: {_missing(c)}" if _missing(c) else "yes",
             *("—" if _missing(c) else _scored_verdict(c, m) for m in metrics), _time(c.pinn),
             *([_time(c.refined)] if refine else []), _time(c.iterative)] for c in cells]
    lines += _table(header, rows)
    refine_column = ["PINN + refine"] if refine else []
    for metric in metrics:
        lines += ["", f"## {metric.label}", ""]
        rows = [[dose_label(c.dose), c.view, _value(c, c.pinn, metric),
                 *(_refined_value(c, metric) or [""] * len(refine_column)), _value(c, c.iterative, metric),
                 _floor(c.floor(metric.component, metric.name)), _verdict_text(c, metric)] for c in cells]
        lines += _table(["dose", "view", "PINN", *refine_column, "iterative", "flat floor", "winner"], rows)
    lines += ["", "## Reconstruction time", "",
              "Wall time of the reconstruction alone (PINN: predict and stitch; "
              + ("PINN + refine: fine-tuning on the scan plus predict and stitch; " if refine else "")
              + "iterative: the engine's iterations), seconds per 1,000 test patterns, on the device each ran "
              "on.", ""]
    rows = [[dose_label(c.dose), c.view, _time(c.pinn), *([_time(c.refined)] if refine else []),
             _time(c.iterative)] for c in cells]
    lines += _table(["dose", "view", "PINN", *refine_column, "iterative"], rows)
    if figures:
        lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in figures]
    lines += ["", "## Notes", ""]
    lines += [f"- {n}" for n in notes] or ["- none"]
    return "\n".join(lines) + "\n"


def cell_notes(cells: Sequence[Cell]) -> list[str]:
    """One line per method cell that lacks something (skipped, failed, not run, a failed seed)."""
    out = []
    for cell in cells:
        for method in cell.methods:
            for note in method.notes:
                out.append(f"dose {dose_label(cell.dose)} {cell.view}, {method.method}: {note}")
    return out


#: ``comparison.csv`` columns: one row per dose x view x metric. The ``refine_*`` columns ("PINN + refine")
#: come last, so a reader of the earlier columns by position is unchanged; they are empty in a cell without it.
CSV_COLUMNS = ("dose", "view", "metric", "pinn_state", "pinn_mean", "pinn_std", "pinn_n", "iterative_state",
               "iterative_mean", "iterative_std", "iterative_n", "floor_mean", "winner", "margin", "spread",
               "within_spread", "pinn_s_per_1000", "pinn_device", "iterative_s_per_1000", "iterative_device",
               "pinn_above_floor", "iterative_above_floor", "refine_state", "refine_mean", "refine_std", "refine_n",
               "refine_s_per_1000", "refine_fine_tuning_s_per_1000", "refine_device", "refine_above_floor")


def csv_text(cells: Sequence[Cell]) -> str:
    """``comparison.csv``: long format, empty fields where a value does not exist."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)

    def num(value: float | None) -> str:
        return "" if value is None else repr(float(value))

    def flag(value: bool | None) -> str:
        return "" if value is None else str(value).lower()

    def stats(method: MethodCell, metric: Metric) -> list[str]:
        s = method.summary(metric.component, metric.name)
        return [method.state, num(s and s.mean), num(s and s.std), "" if s is None else str(s.n)]

    def time(method: MethodCell) -> list[str]:
        t = method.time_per_1000()
        return [num(t and t.mean), method.devices() or ""]

    def refined(cell: Cell, metric: Metric) -> list[str]:
        method = cell.refined
        if method is None:
            return [""] * 8
        tuning = method.fine_tuning_per_1000()
        seconds, device = time(method)
        return [*stats(method, metric), seconds, num(tuning and tuning.mean), device,
                flag(above_floor(cell, method, metric))]

    for cell in cells:
        for metric in metrics_present(cells):
            v = cell_verdict(cell, metric)
            floor = cell.floor(metric.component, metric.name)
            writer.writerow([repr(float(cell.dose)), cell.view, metric.key, *stats(cell.pinn, metric),
                             *stats(cell.iterative, metric), num(floor and floor.mean), v.winner or "",
                             num(v.margin), num(v.spread), "" if v.margin is None else str(v.within_spread).lower(),
                             *time(cell.pinn), *time(cell.iterative),
                             *(flag(above_floor(cell, m, metric)) for m in (cell.pinn, cell.iterative)),
                             *refined(cell, metric)])
    return buf.getvalue()
