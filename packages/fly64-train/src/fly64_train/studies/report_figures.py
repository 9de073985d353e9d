"""The report's study-level figures: metric vs dose across cells, and reconstruction grids across jobs.

Built on the per-job figure module's writer (:mod:`fly64_train.evaluation.figures`: matplotlib, Agg,
no pyplot state, atomic PNG writes). Also the loader that picks each grid panel's reconstruction: an
unreadable ``reconstruction.npz`` becomes a note on its row, never a failed report.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from fly64_data.npz_reader import NpzError
from fly64_manifest import DEFAULT_BACKEND
from fly64_train.evaluation.evaluate import RECONSTRUCTION_NPZ, load_reconstruction
from fly64_train.evaluation.figures import color_limits, save_png
from fly64_train.studies.report_rows import ReportRow, finite_or_none

VIEW_STYLE = {"baseline": ("tab:gray", "o"), "dense": ("tab:blue", "s"), "sparse": ("tab:orange", "^")}


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
    return save_png(fig, path)


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
        lo, hi = color_limits(truth) if truth is not None else (0.0, 1.0)
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
    return save_png(fig, path)


def grid_column(row: ReportRow, several_backends: bool) -> str:
    return f"{row.view} ({row.backend})" if several_backends else row.view


def load_grid_cells(rows: list[ReportRow], several_backends: bool
                ) -> dict[tuple[float, str], dict[str, np.ndarray] | None]:
    """The first evaluated replicate of each (dose, column) for the reconstruction grids."""
    found: dict[tuple[float, str], dict[str, np.ndarray] | None] = {}
    for row in rows:
        key = (row.dose, grid_column(row, several_backends))
        if found.get(key) is not None:
            continue
        path = row.job_dir / RECONSTRUCTION_NPZ if row.job_dir is not None else None
        if row.evaluated and path is not None and path.is_file():
            try:
                # Members, shapes and dtypes checked from the headers first: one line naming file and key.
                found[key] = load_reconstruction(path)
            except NpzError as exc:  # already one line naming the file and the key
                row.artifact_error = str(exc)
                row.note = f"{row.artifact_error}; left out of the figures"
                found[key] = None
            except Exception as exc:  # noqa: BLE001 - one bad artifact must not stop the report: noted, left out
                row.artifact_error = f"{path}: unreadable ({' '.join(str(exc).split())[:200]})"
                row.note = f"{row.artifact_error}; left out of the figures"
                found[key] = None
        else:
            found[key] = None
    return found
