"""Per-job figures of the evaluation (matplotlib, Agg backend, atomic PNG writes).

Every function builds its own ``Figure`` (no pyplot state), so figures can be
made from worker threads or tests without a display and without leaking.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 110


def save_png(fig: Figure, path: str | os.PathLike) -> Path:
    """Render ``fig`` (Agg) into a PNG at ``path``, atomically; also the study report's figures' writer."""
    from fly64_manifest import atomic_write

    FigureCanvasAgg(fig)
    path = Path(path)
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=DPI)
    return path


def color_limits(*images: np.ndarray) -> tuple[float, float]:
    """One colour scale for ``images``: their lowest and highest value (a flat image gets a tiny span)."""
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
        lo, hi = color_limits(truth)
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
    return save_png(fig, path)


def _fmt_frc(value: float | None) -> str:
    return ">=0.5" if value is None else f"{value:.3f}"
