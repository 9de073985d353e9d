"""The report's main table: one row per cell (context, information score, scores beside their floor).

A cell whose jobs were evaluated with refinement (``fly64-train evaluate --refine-steps N``) gets a
"PINN + refine" row right below it per refine setting (steps, lr): the refined copies' scores, with the
steps, learning rate and seconds of fine-tuning in its label; every other cell's row is as before.
"""

from __future__ import annotations

import numpy as np

from fly64_train.studies.report_rows import REFINE_METHOD, Cell, ReportRow, cells, view_label

TABLE_METRICS = (("ssim", "SSIM"), ("pearson", "Pearson"), ("ms_ssim", "MS-SSIM"), ("frc50", "FRC50"),
                 ("psnr", "PSNR dB"))


def fmt(value: float | None, digits: int) -> str:
    """``value`` with ``digits`` decimals, ``-`` when missing."""
    return "-" if value is None else f"{value:.{digits}f}"


def _score(cell: Cell, component: str, name: str) -> str:
    """``mean ± std (n)`` of a score (± and n only with several replicates), then its floor in brackets."""
    if not cell.evaluated:
        status = cell.first.status
        return status if status != "success" else "not evaluated"
    digits = 1 if name == "psnr" else 3
    mean, std, n = cell.stat(f"{component}_{name}")
    if mean is None:
        # Only two metrics can legitimately be null: PSNR of a perfect match, FRC that never crosses.
        # A recorded number that is not finite was never a measurement: missing, never a score.
        recorded_null = all(r.metrics[component].get(name) is None for r in cell.evaluated)
        text = ("inf" if name == "psnr" else ">=0.5") if recorded_null else "-"
    else:
        text = fmt(mean, digits) + (f" ± {std:.{digits}f}" if std is not None else "")
    if len(cell.evaluated) > 1:
        text += f" (n={n})"
    floor, _, _ = cell.stat(f"floor_{component}_{name}")
    return text if floor is None else f"{text} [{floor:.{digits}f}]"


TABLE_CONTEXT = ("backend", "seeds", "train / test positions", "groups", "f", "basis", "NN overlap",
                 "group overlap", "coverage", "epochs", "train min")


def _information(cell: Cell) -> list[str]:
    """The information score ``mean ± std (n)`` and the truth's NLL gain over flat per pattern (what the data hold)."""
    if not cell.evaluated:
        status = cell.first.status
        return [status if status != "success" else "not evaluated"] * 2
    if not any((r.metrics or {}).get("information") for r in cell.evaluated):
        return ["not scored"] * 2
    mean, std, n = cell.stat("information_info")
    if mean is None:
        # Recorded as null: the truth does not beat the flat object on the held-out half.
        text = "n/a (truth <= flat)"
    else:
        text = f"{mean:.3f}" + (f" ± {std:.3f}" if std is not None else "")
        if len(cell.evaluated) > 1:
            text += f" (n={n})"
    gap, _, _ = cell.stat("information_nll_gap_truth_per_pattern")
    return [text, "-" if gap is None else f"{gap:.3g}"]


def _context_cells(cell: Cell) -> list[str]:
    first, ctx = cell.first, cell.first.context
    seeds = sorted(r.seed for r in cell.rows if r.seed is not None)
    positions = (f"{ctx.train_positions} / {ctx.test_positions}"
                 if ctx.train_positions is not None or ctx.test_positions is not None else "-")
    groups = [r.groups for r in cell.rows if r.groups is not None]
    epochs = [r.epochs for r in cell.rows if r.epochs is not None]
    minutes = [r.minutes for r in cell.rows if r.minutes is not None]
    coverage, _, _ = cell.stat("coverage")
    return [
        first.backend, ",".join(map(str, seeds)) if seeds else "-", positions,
        str(groups[0]) if groups else "-", fmt(ctx.overlap_fraction_target, 2), ctx.spacing_basis or "-",
        fmt(ctx.nn_overlap, 3), fmt(ctx.group_overlap, 3),
        f"{coverage:.0%}" if coverage is not None else "-",
        str(max(epochs)) if epochs else "-", f"{np.mean(minutes):.1f}" if minutes else "-",
    ]


def markdown_table(rows: list[ReportRow]) -> str:
    """One row per cell: its context, then amplitude and phase scores, each ``mean ± std (n) [floor]``.

    Below a cell with refined jobs, its "PINN + refine" row (:func:`refine_label`).
    """
    head = ["dose", "view", *TABLE_CONTEXT, "info", "truth gap nats/pattern"]
    for component in ("amp", "phase"):
        head += [f"{component} {label}" for _, label in TABLE_METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for cell in cells(rows):
        lines.append(_table_row(cell, view_label(cell.first)))
        lines += [_table_row(group, refine_label(group)) for group in refined_cells(cell)]
    return "\n".join(lines)


def refined_cells(cell: Cell) -> list[Cell]:
    """The cell's "PINN + refine" rows, one cell per (steps, lr): replicates refined with other settings
    are another method's, so they are never averaged together. Replicates whose settings were not
    recorded (or do not parse) form one cell of their own, after the others (as fly64-compare groups them)."""
    grouped: dict[tuple[int, int, float], list[ReportRow]] = {}
    for row in cell.rows:
        if (refined := row.refined()) is not None:
            settings = refined.refined_with
            key = (1, 0, 0.0) if settings is None else (0, settings.steps, settings.lr)
            grouped.setdefault(key, []).append(refined)
    return [Cell(members) for _, members in sorted(grouped.items(), key=lambda item: item[0])]


def _table_row(cell: Cell, label: str) -> str:
    parts = [f"{cell.first.dose:g}", label, *_context_cells(cell), *_information(cell)]
    for component in ("amplitude", "phase"):
        parts += [_score(cell, component, name) for name, _ in TABLE_METRICS]
    return "| " + " | ".join(parts) + " |"


def refine_label(cell: Cell) -> str:
    """``dense (gs2): PINN + refine (300 steps, lr 0.001, 41.2 s)``: the settings of a
    :func:`refined_cells` cell and the seconds of fine-tuning (the mean over its replicates)."""
    settings = cell.first.refined_with
    seconds = [r.refine_s for r in cell.rows if r.refine_s is not None]
    time = f"{np.mean(seconds):.1f} s" if seconds else "- s"
    what = f"{settings.steps} steps, lr {settings.lr:g}" if settings is not None else "settings not recorded"
    return f"{view_label(cell.first)}: {REFINE_METHOD} ({what}, {time})"
