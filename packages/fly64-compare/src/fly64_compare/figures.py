"""``metrics_vs_dose.png``: every compared score against dose, one line per method and view."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fly64_compare.cells import OK, Cell
from fly64_compare.stats import ITERATIVE, PINN, PINN_REFINE
from fly64_compare.table import Metric

#: One colour per view (matplotlib's default cycle, so the Phase E report's reader recognises them).
VIEW_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
#: Line style and marker per method: the method is the comparison, so it gets the most visible cue.
METHOD_STYLE = {PINN: ("-", "o"), PINN_REFINE: ("-.", "^"), ITERATIVE: ("--", "s")}


def plot_metrics_vs_dose(cells: Sequence[Cell], metrics: Sequence[Metric], path: Path) -> Path:
    """One panel per metric: mean ± std over seeds against dose (log axis); grey band: the flat floor's range.

    The band spans the floors of every view at each dose (they differ by the view's coverage),
    so a line inside it is no better than a structureless object.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; never a display
    import matplotlib.pyplot as plt

    views = list(dict.fromkeys(c.view for c in cells))
    doses = sorted({c.dose for c in cells})
    ncols = min(3, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        floors = []
        for dose in doses:
            values = [s.mean for c in cells if c.dose == dose
                      for s in [c.floor(metric.component, metric.name)] if s is not None]
            floors.append((min(values), max(values)) if values else (np.nan, np.nan))
        lo, hi = np.array(floors).T
        if np.isfinite(lo).any():
            ax.fill_between(doses, lo, hi, color="0.8", alpha=0.7, lw=0, label="flat floor (range over views)")
            # Dotted edges drawn above the method lines: a method sitting on its floor stays visible as such.
            for edge in (lo, hi):
                ax.plot(doses, edge, color="0.35", ls=":", lw=1.4, zorder=5)
        for i, view in enumerate(views):
            colour = VIEW_COLOURS[i % len(VIEW_COLOURS)]
            for method in METHOD_STYLE:  # "PINN + refine" draws a line only where some cell has it
                xs, ys, es = [], [], []
                for cell in cells:
                    mc = cell.method(method)
                    summary = mc.summary(metric.component, metric.name) if mc and mc.state == OK else None
                    if cell.view == view and summary is not None:
                        xs.append(cell.dose)
                        ys.append(summary.mean)
                        es.append(summary.std or 0.0)
                if xs:
                    style, marker = METHOD_STYLE[method]
                    ax.errorbar(xs, ys, yerr=es, color=colour, ls=style, marker=marker, ms=4, capsize=3,
                                label=f"{method} {view}")
        ax.set_xscale("log")
        ax.set_xticks(doses, [f"{d:g}" for d in doses])
        ax.minorticks_off()
        ax.set_xlabel("dose (photons / pattern)")
        ax.set_title(metric.label + (" (lower is better)" if metric.lower_is_better else ""))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    for ax in list(axes.flat)[1:len(metrics)]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 7), frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    refined = " and PINN + refine (dash-dot)" if any(c.refined is not None for c in cells) else ""
    fig.suptitle(f"PtychoPINN (solid){refined} against the iterative baseline (dashed): mean ± std over seeds")
    fig.tight_layout(rect=(0, 0.07, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
