"""The study report: a dose x view table, ``metrics.csv`` and figures from a Phase E artifact root.

Reads ``training_manifest.json`` through :func:`fly64_manifest.load_training_manifest`
(validated, paths checked to stay inside the study) and each job's
``reconstruction.npz``; writes into the output folder:

``report.md``
    The table (one row per dose and view: amplitude and phase SSIM, MS-SSIM,
    FRC50, PSNR, plus coverage and status), how to read it, and the figures.
``metrics.csv``
    Every metric of every job (one row per job, skipped views included).
``metric_vs_dose.png``
    SSIM, MS-SSIM, FRC50 and PSNR against dose (log x), one line per view.
``reconstructions.png`` / ``reconstructions_amplitude.png``
    Aligned phase / amplitude reconstructions: rows doses, columns views.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fly64_data.design import get_study_design
from fly64_manifest.models import thaw
from fly64_train.evaluation.evaluate import FRC_UNIT, RECONSTRUCTION_NPZ
from fly64_train.evaluation.figures import finite_or_none, plot_metric_vs_dose, plot_reconstruction_grid
from fly64_train.evaluation.metrics import METRIC_NAMES
from fly64_train.study.matrix import study_views

TABLE_METRICS = (("ssim", "SSIM"), ("ms_ssim", "MS-SSIM"), ("frc50", "FRC50"), ("psnr", "PSNR dB"))
FILES = ("report.md", "metrics.csv", "metric_vs_dose.png", "reconstructions.png", "reconstructions_amplitude.png")


@dataclass
class ReportRow:
    """One (dose, view) cell of the study."""

    dose: float
    view: str
    gridsize: int | None
    status: str
    metrics: dict[str, Any] | None = None
    job_dir: Path | None = None
    note: str = ""

    @property
    def evaluated(self) -> bool:
        return bool(self.metrics) and "amplitude" in self.metrics and "phase" in self.metrics

    def value(self, component: str, name: str) -> float | None:
        if not self.evaluated:
            return None
        return finite_or_none(self.metrics[component].get(name))

    def flat(self) -> dict[str, Any]:
        """The CSV / figure record: ``amplitude_<metric>`` and ``phase_<metric>`` keys."""
        out: dict[str, Any] = {"dose": self.dose, "view": self.view, "gridsize": self.gridsize,
                               "status": self.status, "evaluated": self.evaluated,
                               "coverage": (self.metrics or {}).get("coverage") if self.evaluated else None}
        for component in ("amplitude", "phase"):
            for name in METRIC_NAMES:
                out[f"{component}_{name}"] = self.value(component, name)
        floor = (self.metrics or {}).get("floor") or {}
        for component in ("amplitude", "phase"):
            for name in ("ssim", "pearson"):
                out[f"floor_{component}_{name}"] = finite_or_none((floor.get(component) or {}).get(name))
        out["note"] = self.note
        return out


@dataclass
class Report:
    rows: list[ReportRow]
    doses: list[float]
    views: list[str]
    files: dict[str, Path] = field(default_factory=dict)


def collect(artifact_root: str | os.PathLike) -> tuple[list[ReportRow], list[float], list[str]]:
    """Report rows for every job and skipped view of the manifest, ordered by dose then view."""
    from fly64_manifest import load_training_manifest

    manifest = load_training_manifest(artifact_root)
    rows = []
    for job in manifest.jobs:
        note = ""
        if job.status == "failed":
            note = job.error or "failed"
        elif job.status == "success" and not job.metrics:
            note = "not evaluated (run fly64-train evaluate)"
        metrics = dict(thaw(job.metrics)) if job.metrics else None
        rows.append(ReportRow(float(job.dose), job.view, job.gridsize, job.status, metrics, job.job_dir, note))
    for skip in manifest.skipped_views:
        rows.append(ReportRow(float(skip.dose), skip.view, skip.gridsize, "skipped", note=skip.reason))
    rows.sort(key=lambda r: (r.dose, _view_rank(r.view), r.gridsize or 0))
    doses = sorted({r.dose for r in rows})
    views = sorted({r.view for r in rows}, key=_view_rank)
    return rows, doses, views


def _view_rank(view: str) -> tuple[int, str]:
    order = study_views(get_study_design())
    return (order.index(view) if view in order else len(order), view)


def _cell(row: ReportRow, component: str, name: str) -> str:
    if not row.evaluated:
        return row.status if row.status != "success" else "not evaluated"
    value = row.value(component, name)
    if value is None:
        # Only two metrics can legitimately be null: PSNR of a perfect match, FRC that never crosses.
        return "inf" if name == "psnr" else ">=0.5"
    return f"{value:.1f}" if name == "psnr" else f"{value:.3f}"


def markdown_table(rows: list[ReportRow]) -> str:
    """The dose x view table (amplitude and phase: SSIM, MS-SSIM, FRC50, PSNR; coverage)."""
    head = ["dose", "view"]
    for component in ("amp", "phase"):
        head += [f"{component} {label}" for _, label in TABLE_METRICS]
    head += ["coverage"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for row in rows:
        cells = [f"{row.dose:g}", f"{row.view} (gs{row.gridsize})" if row.gridsize else row.view]
        for component in ("amplitude", "phase"):
            cells += [_cell(row, component, name) for name, _ in TABLE_METRICS]
        coverage = row.flat()["coverage"]
        cells.append(f"{coverage:.0%}" if coverage is not None else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def metrics_csv(rows: list[ReportRow]) -> str:
    """Every metric of every row, one row per job (empty field = not available)."""
    buf = io.StringIO()
    records = [r.flat() for r in rows]
    fields = list(records[0]) if records else ["dose", "view"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for rec in records:
        writer.writerow({k: ("" if v is None else v) for k, v in rec.items()})
    return buf.getvalue()


def _load_cells(rows: list[ReportRow]) -> dict[tuple[float, str], dict[str, np.ndarray] | None]:
    cells: dict[tuple[float, str], dict[str, np.ndarray] | None] = {}
    for row in rows:
        path = row.job_dir / RECONSTRUCTION_NPZ if row.job_dir is not None else None
        if row.evaluated and path is not None and path.is_file():
            with np.load(path, allow_pickle=False) as data:
                cells[(row.dose, row.view)] = {k: data[k] for k in ("amplitude", "phase", "amplitude_true",
                                                                     "phase_true")}
        else:
            cells[(row.dose, row.view)] = None
    return cells


def _markdown(rows: list[ReportRow], artifact_root: Path) -> str:
    notes = [f"- dose {r.dose:g} {r.view}: {r.status}: {r.note}" for r in rows if r.note]
    parts = [
        "# fly64 dose/overlap study: evaluation report",
        "",
        f"Artifact root: `{artifact_root}`. Each model reconstructs its own test split; scores compare the "
        "aligned reconstruction (amplitude scale, phase offset and linear ramp removed) with the ground-truth "
        "`objectGuess` on the lit pixels of the scanned region. Higher is better for every column; FRC50 is "
        f"the spatial frequency ({FRC_UNIT}, Nyquist = 0.5) where the Fourier ring correlation falls below 0.5 "
        "(`>=0.5`: never, up to Nyquist). Coverage is the fraction of the region lit by the scan; "
        "scores use the lit pixels only (gaps are not scored). Definitions: docs/evaluation.md.",
        "",
        markdown_table(rows),
        "",
    ]
    floors = _floor_lines(rows)
    if floors:
        parts += ["Floor: what a structureless (flat) object scores after the same alignment (the phase plane "
                  "and amplitude scale are fitted to the truth, so it is not zero). Scores near it mean "
                  "nothing was reconstructed.", "", *floors, ""]
    if notes:
        parts += ["Notes:", "", *notes, ""]
    parts += [
        "All metrics of every job (MAE, Pearson, FRC 1/7 too): `metrics.csv`.",
        "",
        "![metric vs dose](metric_vs_dose.png)",
        "",
        "![phase reconstructions](reconstructions.png)",
        "",
        "![amplitude reconstructions](reconstructions_amplitude.png)",
        "",
    ]
    return "\n".join(parts)


def _floor_lines(rows: list[ReportRow]) -> list[str]:
    lines = []
    for view in sorted({r.view for r in rows}, key=_view_rank):
        flats = [r.flat() for r in rows if r.view == view and r.evaluated]
        values = {k: [f[k] for f in flats if f.get(k) is not None] for k in
                  ("floor_amplitude_ssim", "floor_phase_ssim", "floor_phase_pearson")}
        if all(values.values()):
            lines.append(f"- {view}: amp SSIM {np.mean(values['floor_amplitude_ssim']):.3f}, "
                         f"phase SSIM {np.mean(values['floor_phase_ssim']):.3f}, "
                         f"phase Pearson {np.mean(values['floor_phase_pearson']):.3f}")
    return lines


def write_report(artifact_root: str | os.PathLike, output: str | os.PathLike) -> Report:
    """Write the report files into ``output`` (created if needed; each file atomically)."""
    from fly64_manifest import atomic_write

    artifact_root, output = Path(artifact_root), Path(output)
    rows, doses, views = collect(artifact_root)
    output.mkdir(parents=True, exist_ok=True)
    files = {name: output / name for name in FILES}
    with atomic_write(files["report.md"]) as fh:
        fh.write(_markdown(rows, artifact_root))
    with atomic_write(files["metrics.csv"]) as fh:
        fh.write(metrics_csv(rows))
    plot_metric_vs_dose([r.flat() for r in rows], files["metric_vs_dose.png"])
    cells = _load_cells(rows)
    plot_reconstruction_grid(cells, doses, views, files["reconstructions.png"], "phase")
    plot_reconstruction_grid(cells, doses, views, files["reconstructions_amplitude.png"], "amplitude")
    return Report(rows, doses, views, files)
