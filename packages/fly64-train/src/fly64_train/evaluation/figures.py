"""Figures of the evaluation and the study report (matplotlib, Agg backend, atomic PNG writes).

Every function builds its own ``Figure`` (no pyplot state), so figures can be
made from worker threads or tests without a display and without leaking.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fly64_manifest import DEFAULT_BACKEND

DPI = 110
VIEW_STYLE = {"baseline": ("tab:gray", "o"), "dense": ("tab:blue", "s"), "sparse": ("tab:orange", "^")}


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    from fly64_manifest import atomic_write

    FigureCanvasAgg(fig)
    path = Path(path)
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=DPI)
    return path


def _limits(*images: np.ndarray) -> tuple[float, float]:
    lo = min(float(np.min(a)) for a in images)
    hi = max(float(np.max(a)) for a in images)
    return lo, hi if hi > lo else lo + 1e-6


def plot_reconstruction(evaluation: Any, path: str | os.PathLike, title: str = "") -> Path:
    """2 x 3 panels: amplitude and phase rows; reconstruction, ground truth, difference columns.

    The reconstruction is shown after alignment (scale, phase offset and ramp
    removed) on the same colour scale as the ground truth; uncovered pixels
    are hatched out by a grey overlay.
    """
    fig = Figure(figsize=(12, 7.5))
    axes = fig.subplots(2, 3)
    rows = (
        ("amplitude", evaluation.amplitude, evaluation.amplitude_true, evaluation.amplitude_scores, "gray"),
        ("phase (rad)", evaluation.phase, evaluation.phase_true, evaluation.phase_scores, "twilight_shifted"),
    )
    gaps = np.ma.masked_where(evaluation.covered, np.ones(evaluation.covered.shape))
    for ax_row, (name, recon, truth, scores, cmap) in zip(axes, rows, strict=True):
        lo, hi = _limits(truth)
        diff = recon - truth
        span = max(float(np.abs(diff).max()), 1e-6)
        panels = ((recon, f"{name}: reconstruction", cmap, lo, hi),
                  (truth, f"{name}: ground truth", cmap, lo, hi),
                  (diff, f"{name}: reconstruction - truth", "RdBu_r", -span, span))
        for ax, (img, label, cm, vmin, vmax) in zip(ax_row, panels, strict=True):
            im = ax.imshow(img, cmap=cm, vmin=vmin, vmax=vmax, interpolation="nearest")
            if img is not truth:
                ax.imshow(gaps, cmap="Greys", vmin=0, vmax=2, alpha=0.6, interpolation="nearest")
            ax.set_title(label, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
        ax_row[0].set_ylabel(f"SSIM {scores.ssim:.3f}  PSNR {scores.psnr:.1f} dB\n"
                             f"FRC50 {_fmt_frc(scores.frc50)} cyc/px", fontsize=8)
    cov = float(evaluation.covered.mean())
    fig.suptitle(f"{title}\ncoverage {cov:.0%} of the {evaluation.amplitude.shape[0]}x"
                 f"{evaluation.amplitude.shape[1]} px region (grey: not lit by the scan)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _fmt_frc(value: float | None) -> str:
    return ">=0.5" if value is None else f"{value:.3f}"


def plot_metric_vs_dose(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike,
                        metrics: Sequence[tuple[str, str]] = (("ssim", "SSIM"), ("ms_ssim", "MS-SSIM"),
                                                              ("frc50", "FRC50 (cycles/pixel)"),
                                                              ("psnr", "PSNR (dB)"))) -> Path:
    """Metric vs dose (log x), one line per view (and backend); top row amplitude, bottom row phase.

    ``rows`` are report cells with ``dose``, ``view``, optional ``backend`` and
    ``amplitude_<metric>`` / ``phase_<metric>`` keys (None where missing), optional
    ``<key>_std`` (drawn as error bars: the spread across training seeds) and
    ``floor_<component>_<metric>`` (the flat-object floor, drawn as a grey band
    from its lowest to its highest value at each dose). An FRC that never crossed
    is drawn at Nyquist (0.5): the crossing is at least that.
    """
    fig = Figure(figsize=(4 * len(metrics), 7))
    axes = fig.subplots(2, len(metrics), squeeze=False)
    several = len({r.get("backend") for r in rows}) > 1
    lines = list(dict.fromkeys((r["view"], r.get("backend")) for r in rows))
    for i, component in enumerate(("amplitude", "phase")):
        for j, (key, label) in enumerate(metrics):
            ax = axes[i][j]
            _floor_band(ax, rows, f"floor_{component}_{key}")
            for view, backend in lines:
                color, marker = VIEW_STYLE.get(view.removesuffix("_matched"), ("black", "x"))
                style = "--" if view.endswith("_matched") else ("-" if backend in (None, DEFAULT_BACKEND) else ":")
                xs, ys, errs = [], [], []
                cell_rows = (r for r in rows if r["view"] == view and r.get("backend") == backend)
                for r in sorted(cell_rows, key=lambda r: float(r["dose"])):
                    value = finite_or_none(r.get(f"{component}_{key}"))
                    if value is None and key.startswith("frc") and r.get("evaluated"):
                        value = 0.5  # never crossed: the resolution is at least Nyquist
                    if value is not None:
                        xs.append(float(r["dose"]))
                        ys.append(value)
                        errs.append(finite_or_none(r.get(f"{component}_{key}_std")) or 0.0)
                if xs:
                    name = f"{view} ({backend})" if several else view
                    ax.errorbar(xs, ys, yerr=errs if any(errs) else None, color=color, marker=marker,
                                linestyle=style, capsize=3, label=name)
            ax.set_xscale("log")
            ax.set_xlabel("dose (photons per pattern)")
            ax.set_title(f"{component}: {label}", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.suptitle("mean over training seeds, error bars ± std; grey band: flat-object floor", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _floor_band(ax: Any, rows: Sequence[Mapping[str, Any]], key: str) -> None:
    """Grey band between the lowest and highest floor of the cells at each dose."""
    by_dose: dict[float, list[float]] = {}
    for r in rows:
        value = finite_or_none(r.get(key))
        if value is not None:
            by_dose.setdefault(float(r["dose"]), []).append(value)
    if not by_dose:
        return
    doses = sorted(by_dose)
    lo = [min(by_dose[d]) for d in doses]
    hi = [max(by_dose[d]) for d in doses]
    if len(doses) == 1:  # a band needs a width on a log axis
        doses = [doses[0] / 1.2, doses[0] * 1.2]
        lo, hi = lo * 2, hi * 2
    ax.fill_between(doses, lo, [h + 1e-3 for h in hi], color="0.6", alpha=0.35, linewidth=0, label="floor")


def plot_reconstruction_grid(cells: Mapping[tuple[float, str], Mapping[str, np.ndarray] | None],
                             doses: Sequence[float], views: Sequence[str], path: str | os.PathLike,
                             component: str = "phase") -> Path:
    """Rows doses, columns views: each cell the aligned reconstruction (``component``) of that job.

    ``cells[(dose, view)]`` holds the arrays of ``reconstruction.npz`` or None
    (skipped, failed, not evaluated), drawn as an empty panel saying so.
    """
    n_rows, n_cols = max(len(doses), 1), max(len(views), 1) + 1
    fig = Figure(figsize=(3.2 * n_cols, 3.0 * n_rows))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    cmap = "twilight_shifted" if component == "phase" else "gray"
    for i, dose in enumerate(doses):
        truth = next((c[f"{component}_true"] for (d, _), c in cells.items() if c is not None and d == dose), None)
        lo, hi = _limits(truth) if truth is not None else (0.0, 1.0)
        ax = axes[i][0]
        if truth is not None:
            ax.imshow(truth, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        if i == 0:
            ax.set_title("ground truth", fontsize=10)
        ax.set_ylabel(f"dose {dose:g}", fontsize=10)
        for j, view in enumerate(views, start=1):
            ax = axes[i][j]
            cell = cells.get((dose, view))
            if cell is None:
                ax.text(0.5, 0.5, "no reconstruction\n(skipped, failed or\nnot evaluated)", ha="center",
                        va="center", fontsize=8, transform=ax.transAxes)
            else:
                ax.imshow(cell[component], cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
            if i == 0:
                ax.set_title(view, fontsize=10)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    unit = " (rad)" if component == "phase" else ""
    fig.suptitle(f"aligned {component} reconstructions{unit}: rows doses, columns views", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def finite_or_none(value: Any) -> float | None:
    """A float for plotting/tabulating, or None for missing and non-finite values."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
