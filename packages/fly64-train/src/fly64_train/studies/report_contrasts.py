"""Overlap or data? The pairs of cells the equal-positions controls make, and their table.

Each pair differs in as few factors as the controls allow; what it isolates is read from the recorded
context (positions, measured overlap, gridsize), so a reader sees which factor a score difference can
come from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fly64_manifest import DEFAULT_BACKEND
from fly64_train.studies.report_rows import Cell, ReportRow, cells, view_label
from fly64_train.studies.report_table import fmt

#: Scores a contrast compares: (flat key, label). The image scores are compared above their own flat
#: floors: a control tests on a smaller region than the view it is matched to, and the floor (what a
#: structureless object scores there) differs between regions by as much as the effects measured
#: (amplitude SSIM floor 0.514 against 0.668 on the default data). The information score is already
#: relative to its flat object and the truth on each cell's own test data.
CONTRAST_SCORES = (("information_info", "Δ info"), ("amplitude_ssim", "Δ amp SSIM above floor"),
                   ("phase_ssim", "Δ phase SSIM above floor"), ("amplitude_pearson", "Δ amp Pearson above floor"))
#: Nearest-neighbour overlaps closer than this count as equal when a contrast says what differs.
SAME_OVERLAP = 0.05


@dataclass(frozen=True)
class Contrast:
    """Two cells of one backend and dose that differ in as few factors as the controls allow."""

    kind: str
    """What the pair isolates: ``overlap``, ``positions`` or ``gridsize`` (at equal positions)."""
    a: Cell
    b: Cell

    def differs(self) -> list[str]:
        """The factors that differ between the cells, read from their recorded context."""
        ca, cb = self.a.first.context, self.b.first.context
        out = []
        if ca.train_positions != cb.train_positions:
            out.append("positions")
        overlaps = (ca.nn_overlap, cb.nn_overlap)
        if None not in overlaps and abs(overlaps[0] - overlaps[1]) > SAME_OVERLAP:
            out.append("overlap")
        if self.a.first.gridsize != self.b.first.gridsize:
            out.append("gridsize")
        return out


def contrasts(rows: Sequence[ReportRow]) -> list[Contrast]:
    """The pairs the equal-positions controls make, per backend and dose.

    For a control ``C`` thinned from ``S`` to the position count of ``R``: ``R`` against ``C`` (equal
    positions: overlap, and gridsize when ``S`` and ``R`` train differently) and ``S`` against ``C``
    (the same scan, thinned: the amount of data). Two controls matched to the same view are compared
    too (equal positions: gridsize, e.g. ``dense_matched`` against ``baseline_matched``).
    """
    by_key = {(c.first.backend, c.first.dose, c.first.view): c for c in cells(rows)}
    out: list[Contrast] = []
    controls = [c for c in by_key.values() if c.first.context.matched_to]
    for control in controls:
        backend, dose, ctx = control.first.backend, control.first.dose, control.first.context
        reference = by_key.get((backend, dose, ctx.matched_to))
        source = by_key.get((backend, dose, ctx.matched_from)) if ctx.matched_from else None
        if reference is not None:
            out.append(Contrast("overlap", reference, control))
        if source is not None:
            out.append(Contrast("positions", source, control))
    for i, first in enumerate(controls):
        for second in controls[i + 1:]:
            same = (first.first.backend, first.first.dose, first.first.context.matched_to) == (
                second.first.backend, second.first.dose, second.first.context.matched_to)
            if same and first.first.gridsize != second.first.gridsize:
                gs2, gs1 = sorted((first, second), key=lambda c: -(c.first.gridsize or 0))
                out.append(Contrast("gridsize", gs2, gs1))
    return out


def contrast_table(rows: Sequence[ReportRow]) -> str:
    """Overlap or data? One row per contrast: both cells' positions, groups and overlap, and A - B of the scores."""
    found = contrasts(rows)
    if not found:
        return ""
    head = ["dose", "A", "B", "isolates", "differs in", "positions A / B", "groups A / B", "NN overlap A / B",
            *(label for _, label in CONTRAST_SCORES)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 5 + ["---:"] * (len(head) - 5)) + "|"]
    for contrast in found:
        a, b = contrast.a, contrast.b
        groups = [next((r.groups for r in c.rows if r.groups is not None), None) for c in (a, b)]
        deltas = [_delta(a, b, key) for key, _ in CONTRAST_SCORES]
        lines.append("| " + " | ".join([
            f"{a.first.dose:g}" + (f" ({a.first.backend})" if a.first.backend != DEFAULT_BACKEND else ""),
            view_label(a.first), view_label(b.first), contrast.kind, ", ".join(contrast.differs()) or "nothing",
            f"{_fmt_int(a.first.context.train_positions)} / {_fmt_int(b.first.context.train_positions)}",
            f"{_fmt_int(groups[0])} / {_fmt_int(groups[1])}",
            f"{fmt(a.first.context.nn_overlap, 3)} / {fmt(b.first.context.nn_overlap, 3)}", *deltas,
        ]) + " |")
    return "\n".join(lines)


def _above_floor(cell: Cell, key: str) -> float | None:
    """The cell's mean of ``key`` minus its flat floor (the information score as it is: 0 is its floor)."""
    mean, _, _ = cell.stat(key)
    if mean is None or key == "information_info":
        return mean
    floor, _, _ = cell.stat(f"floor_{key}")
    return None if floor is None else mean - floor


def _delta(a: Cell, b: Cell, key: str) -> str:
    """A - B above each cell's own floor, or ``-`` where a mean or a floor was not recorded."""
    da, db = _above_floor(a, key), _above_floor(b, key)
    return "-" if da is None or db is None else f"{da - db:+.3f}"


def _fmt_int(value: int | None) -> str:
    return "-" if value is None else str(value)
