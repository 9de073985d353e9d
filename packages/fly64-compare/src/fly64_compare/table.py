"""``comparison.md`` and ``comparison.csv``: the methods side by side per dose x view and metric.

PINN and the iterative method are in every cell, and the winner is always PINN against the iterative
method (SPEC §8a). "PINN + refine" has columns, and a verdict of its own against the iterative method,
only where some cell of the study recorded a refinement (``comparison.csv`` always has its columns, empty
without one).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from fly64_compare.cells import OK, Cell, MethodCell
from fly64_compare.stats import Summary, Verdict, refine_verdict, verdict
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
    """PINN against the iterative method, whatever else the cell has: the study's question (SPEC §8a)."""
    return verdict(cell.pinn.summary(metric.component, metric.name),
                   cell.iterative.summary(metric.component, metric.name), lower_is_better=metric.lower_is_better)


def cell_refine_verdict(cell: Cell, metric: Metric) -> Verdict | None:
    """"PINN + refine" against the iterative method; ``None`` in a cell without it (``n/a`` when it has no mean)."""
    if cell.refined is None:
        return None
    return refine_verdict(cell.refined.summary(metric.component, metric.name),
                          cell.iterative.summary(metric.component, metric.name),
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


def _missing(cell: Cell, methods: Sequence[MethodCell] | None = None) -> str | None:
    """Why ``methods`` (PINN and the iterative one by default) cannot be compared (``iterative failed``,
    ``PINN skipped``), or ``None`` when all have scores. "PINN + refine" never stops the main comparison."""
    missing = [f"{m.method} {m.state}" for m in (methods or (cell.pinn, cell.iterative)) if m.state != OK]
    return ", ".join(missing) or None


def _verdict_text(cell: Cell, metric: Metric) -> str:
    missing = _missing(cell)
    return f"no comparison: {missing}" if missing else _scored_verdict(cell, metric)


def _scored_verdict(cell: Cell, metric: Metric) -> str:
    """PINN against the iterative method in a cell both scored; names the method that did not record this metric."""
    return _judged(cell, metric, (cell.pinn, cell.iterative), cell_verdict(cell, metric))


def _refine_verdict_text(cell: Cell, metric: Metric) -> str:
    """"PINN + refine" against the iterative method, or why not; empty in a cell without it."""
    v = cell_refine_verdict(cell, metric)
    if v is None or cell.refined is None:
        return ""
    pair = (cell.refined, cell.iterative)
    missing = _missing(cell, pair)
    return f"no comparison: {missing}" if missing else _judged(cell, metric, pair, v)


def _judged(cell: Cell, metric: Metric, pair: Sequence[MethodCell], v: Verdict) -> str:
    """``v``'s text, or which of ``pair`` did not record the metric."""
    lacking = [m.method for m in pair if m.summary(metric.component, metric.name) is None]
    if lacking:
        return " and ".join(lacking) + " did not record it"
    winner = next((m for m in pair if m.method == v.winner), None)
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
             "alone). The winner is PINN or the iterative method, whichever has the better mean; its margin is "
             "measured against the seed spread sqrt(std_PINN² + std_iterative²) (independent replicates: "
             "the methods' seeds are not paired): a margin no larger than it reads *within spread*, "
             "and with one seed per method there is no spread to measure it against. The floor is the same "
             "score of a flat (structureless) object put through the same alignment; a value marked (≤ floor) "
             "recovered nothing, and a winner not above the floor says so. MAE-like scores are not shown: "
             "every score shown is better when larger.", ""]
    if refine:
        lines += ["*PINN + refine* is the trained model fine-tuned without labels on each test scan's own "
                  "patterns before predicting it (`fly64-train evaluate --refine-steps`); it is a method of its "
                  "own where it was run, with its time (fine-tuning plus prediction) and a verdict of its own "
                  "against the iterative method, measured the same way (*PINN + refine vs iterative*). It never "
                  "changes the winner above, which stays PINN against the iterative method. Cells without it "
                  "show nothing in its columns.", ""]
    refine_time = ["PINN + refine s / 1k patterns"] if refine else []
    lines += ["## Winner per metric", ""]
    # A cell one method lacks says so once, in "compared", instead of in every metric's column.
    header = ["dose", "view", "compared", *(m.label for m in metrics), "PINN s / 1k patterns", *refine_time,
              "iterative s / 1k patterns"]
    rows = [[dose_label(c.dose), c.view, f"no: {_missing(c)}" if _missing(c) else "yes",
             *("—" if _missing(c) else _scored_verdict(c, m) for m in metrics), _time(c.pinn),
             *([_time(c.refined)] if refine else []), _time(c.iterative)] for c in cells]
    lines += _table(header, rows)
    if refine:
        lines += ["", "## PINN + refine against the iterative method", ""]
        rows = [[dose_label(c.dose), c.view, *(_refine_verdict_text(c, m) for m in metrics)]
                for c in cells if c.refined is not None]
        lines += _table(["dose", "view", *(m.label for m in metrics)], rows)
    refine_column = ["PINN + refine"] if refine else []
    refine_winner = ["PINN + refine vs iterative"] if refine else []
    for metric in metrics:
        lines += ["", f"## {metric.label}", ""]
        rows = [[dose_label(c.dose), c.view, _value(c, c.pinn, metric),
                 *(_refined_value(c, metric) or [""] * len(refine_column)), _value(c, c.iterative, metric),
                 _floor(c.floor(metric.component, metric.name)), _verdict_text(c, metric),
                 *([_refine_verdict_text(c, metric)] if refine else [])] for c in cells]
        lines += _table(["dose", "view", "PINN", *refine_column, "iterative", "flat floor", "winner",
                         *refine_winner], rows)
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


#: ``comparison.csv`` columns: one row per dose x view x metric. ``winner``, ``margin``, ``spread`` and
#: ``within_spread`` are PINN against the iterative method; the ``refine_*`` columns ("PINN + refine", its
#: ``refine_winner`` ... against the iterative method) come last, so a reader of the earlier columns by
#: position is unchanged; they are empty in a cell without it.
CSV_COLUMNS = ("dose", "view", "metric", "pinn_state", "pinn_mean", "pinn_std", "pinn_n", "iterative_state",
               "iterative_mean", "iterative_std", "iterative_n", "floor_mean", "winner", "margin", "spread",
               "within_spread", "pinn_s_per_1000", "pinn_device", "iterative_s_per_1000", "iterative_device",
               "pinn_above_floor", "iterative_above_floor", "refine_state", "refine_mean", "refine_std", "refine_n",
               "refine_s_per_1000", "refine_fine_tuning_s_per_1000", "refine_device", "refine_above_floor",
               "refine_winner", "refine_margin", "refine_spread", "refine_within_spread")


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

    def judged(v: Verdict | None) -> list[str]:
        if v is None:
            return [""] * 4
        return [v.winner or "", num(v.margin), num(v.spread), "" if v.margin is None else str(v.within_spread).lower()]

    def refined(cell: Cell, metric: Metric) -> list[str]:
        method = cell.refined
        if method is None:
            return [""] * 12
        tuning = method.fine_tuning_per_1000()
        seconds, device = time(method)
        return [*stats(method, metric), seconds, num(tuning and tuning.mean), device,
                flag(above_floor(cell, method, metric)), *judged(cell_refine_verdict(cell, metric))]

    for cell in cells:
        for metric in metrics_present(cells):
            floor = cell.floor(metric.component, metric.name)
            writer.writerow([repr(float(cell.dose)), cell.view, metric.key, *stats(cell.pinn, metric),
                             *stats(cell.iterative, metric), num(floor and floor.mean),
                             *judged(cell_verdict(cell, metric)),
                             *time(cell.pinn), *time(cell.iterative),
                             *(flag(above_floor(cell, m, metric)) for m in (cell.pinn, cell.iterative)),
                             *refined(cell, metric)])
    return buf.getvalue()
