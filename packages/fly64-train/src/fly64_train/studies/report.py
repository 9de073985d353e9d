"""The study report: a dose x view table, ``metrics.csv`` and figures from Phase E artifact roots.

This module assembles ``report.md`` and writes the files; the parts live beside it: the rows and cells
(:mod:`~fly64_train.studies.report_rows`), the main table (:mod:`~fly64_train.studies.report_table`),
the controls' contrasts (:mod:`~fly64_train.studies.report_contrasts`), the CSV
(:mod:`~fly64_train.studies.report_csv`), the figures (:mod:`~fly64_train.studies.report_figures`) and
the all-or-nothing publish (:mod:`~fly64_train.studies.report_publish`).

Reads each root's ``training_manifest.json`` through :func:`fly64_manifest.load_training_manifest`
(validated, paths checked to stay inside the study) and each job's
``reconstruction.npz``; nothing else: the context of a cell (positions, measured
overlap, spacing basis, equal-positions control) was recorded in the job's entry.
Several roots (torch and tensorflow runs) sit side by side, the backend a column.
A *cell* is (backend, dose, view, gridsize); its jobs are the replicates (one per
training seed), summarised as mean ± standard deviation (n). Writes into the output folder:

``report.md``
    The table (one row per cell: context, then scores beside their flat-object
    floor; a "PINN + refine" row below a cell whose jobs were refined), how to read it, and the figures.
``metrics.csv``
    Every metric and the context of every job (one row per job and seed, skipped views included).
``metric_vs_dose.png``
    SSIM, MS-SSIM, FRC50 and PSNR against dose (log x), one line per view and backend,
    error bars ± std across seeds, the flat-object floor as a grey band.
``reconstructions.png`` / ``reconstructions_amplitude.png``
    Aligned phase / amplitude reconstructions: rows doses, columns views (the first seed).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fly64_train.evaluation.evaluate import FRC_UNIT
from fly64_train.studies.report_contrasts import SAME_OVERLAP, contrast_table
from fly64_train.studies.report_csv import metrics_csv
from fly64_train.studies.report_figures import (
    grid_column,
    load_grid_cells,
    plot_metric_vs_dose,
    plot_reconstruction_grid,
)
from fly64_train.studies.report_publish import publish
from fly64_train.studies.report_rows import REFINE_METHOD, ReportRow, cells, collect, unique_roots
from fly64_train.studies.report_table import markdown_table

#: How to read a "PINN + refine" row; said only in a report that has one (other reports are unchanged).
REFINE_TEXT = (f" A `{REFINE_METHOD}` row below a cell scores the same models fine-tuned without labels on the "
               "test split's own patterns (`fly64-train evaluate --refine-steps N`: the training loss, a fixed "
               "number of steps, the bundle unchanged); its label gives the steps, the learning rate and the "
               "seconds of fine-tuning (mean over seeds). Its information score comes from a copy fine-tuned on "
               "half A of the photons only; its context, coverage and floor are the cell's.")
FILES = ("report.md", "metrics.csv", "metric_vs_dose.png", "reconstructions.png", "reconstructions_amplitude.png")


def _markdown(rows: list[ReportRow], artifact_roots: Sequence[Path]) -> str:
    notes = [f"- dose {r.dose:g} {r.view}{'' if r.seed is None else f' seed {r.seed}'} ({r.backend}): "
             f"{r.status}: {r.note}" for r in rows if r.note]
    # Above 1 the reconstruction explains the held-out half better than the object that made it: only
    # that half's noise can do so (docs/evaluation.md), so each case is named for the reader to judge.
    notes += [f"- dose {r.dose:g} {r.view}{'' if r.seed is None else f' seed {r.seed}'} ({r.backend}): "
              f"information score {info:.3f} is above 1 (within the noise of the held-out half only if "
              "close to 1)" for r in rows if (info := r.flat()["information_info"]) is not None and info > 1]
    bases = sorted({r.context.spacing_basis for r in rows if r.context.spacing_basis})
    roots = ", ".join(f"`{root}`" for root in artifact_roots)
    parts = [
        "# fly64 dose/overlap study: evaluation report",
        "",
        f"Artifact root(s): {roots}. Each model reconstructs its own test split; scores compare the "
        "aligned reconstruction (amplitude scale, phase offset and linear ramp removed) with the ground-truth "
        "`objectGuess` on the lit pixels of the scanned region. Higher is better for every score; FRC50 is "
        f"the spatial frequency ({FRC_UNIT}, Nyquist = 0.5) where the Fourier ring correlation falls below 0.5 "
        "(`>=0.5`: never, up to Nyquist). Coverage is the fraction of the region lit by the scan; "
        "scores use the lit pixels only (gaps are not scored). Definitions: docs/evaluation.md.",
        "",
        "How to read a row. Context first: the positions each model trained and was tested on, its training "
        "groups, the view's nominal overlap f, the spacing basis (`patch`: S = (1 - f) N, `probe`: "
        "S = (1 - f) D), the nearest-neighbour and group footprint overlap Phase D *measured* on the "
        "training split (`-`: not measured, e.g. Phase C's baseline), coverage, epochs and training "
        "minutes. Then the information score `info`: the model predicts from half of each test pattern's "
        "photons and is scored on the other half's likelihood, 0 = no better than a flat object, 1 = as good "
        "as the true object (no alignment); `truth gap` is how many nats per pattern the true object beats "
        "the flat one by on that half, i.e. how much the data can say at that dose. Then each score as "
        "`mean ± std (n=seeds)` across training seeds (one seed: the value), "
        "and in brackets the score of a flat (structureless) object after the same alignment: a score near "
        "its bracket means nothing was reconstructed. Views differ in positions as well as in overlap; an "
        "equal-positions control (`matched to ...`) has the position count of the view it is matched to, so "
        "comparing it with that view separates overlap from data size."
        + (f" Spacing basis of the overlap views: {', '.join(bases)}." if bases else "")
        + (REFINE_TEXT if any(r.refined() is not None for r in rows) else ""),
        "",
        markdown_table(rows),
        "",
    ]
    contrast = contrast_table(rows)
    if contrast:
        parts += [
            "## Overlap or data?",
            "",
            "Pairs of cells made by the equal-positions controls, each differing in as few factors as the "
            "controls allow (`differs in`, read from the recorded context; overlaps within "
            f"{SAME_OVERLAP} count as equal). `overlap`: a view against the control with its position "
            "count, thinned from a denser view (a score difference is overlap, plus gridsize where it "
            "differs too); `positions`: a view against its own thinned control (same overlap: the amount "
            "of data); `gridsize`: two controls with equal positions, gs2 against gs1. Δ = A - B of the "
            "means over seeds (the spread is in the table above). A control keeps its source's overlap by "
            "losing scanned area, so its test region is smaller too, and a structureless object scores "
            "differently there: SSIM and Pearson are therefore compared above each cell's own flat floor "
            "(score - [floor] of the table above); the information score is already relative to a flat "
            "object and the truth on each cell's own test data.",
            "",
            contrast,
            "",
        ]
    if notes:
        parts += ["Notes:", "", *notes, ""]
    parts += [
        "All metrics, the context and the floor of every job and seed (MAE, Pearson, FRC 1/7 too): "
        "`metrics.csv`.",
        "",
        "![metric vs dose](metric_vs_dose.png)",
        "",
        "![phase reconstructions](reconstructions.png)",
        "",
        "![amplitude reconstructions](reconstructions_amplitude.png)",
        "",
    ]
    return "\n".join(parts)


@dataclass
class Report:
    """What :func:`write_report` wrote, and from which rows."""

    rows: list[ReportRow]
    doses: list[float]
    views: list[str]
    files: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """One line per job artifact the report could not read (it went on without it)."""


def write_report(artifact_roots: str | os.PathLike | Sequence[str | os.PathLike],
                 output: str | os.PathLike) -> Report:
    """Write the report files into ``output`` (created if needed), all or nothing.

    Every manifest and artifact is read before anything is written, the files are made in a
    staging folder beside ``output``, and only when all of them exist are they moved in
    (:func:`~fly64_train.studies.report_publish.publish`): a failure leaves an existing report as it was,
    never half replaced.
    """
    import tempfile

    roots = unique_roots([artifact_roots] if isinstance(artifact_roots, (str, os.PathLike)) else artifact_roots)
    output = Path(output)
    rows = collect(roots)
    several_backends = len({r.backend for r in rows}) > 1
    doses = sorted({r.dose for r in rows})
    columns = list(dict.fromkeys(grid_column(r, several_backends) for r in rows))
    grid = load_grid_cells(rows, several_backends)  # first: an unreadable artifact becomes a note in report.md
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.staging-", dir=output.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp's 0700 would become the published folder's mode
    try:
        made = {name: staging / name for name in FILES}
        made["report.md"].write_text(_markdown(rows, roots))
        made["metrics.csv"].write_text(metrics_csv(rows))
        plot_metric_vs_dose([cell.record() for cell in cells(rows)], made["metric_vs_dose.png"])
        plot_reconstruction_grid(grid, doses, columns, made["reconstructions.png"], "phase")
        plot_reconstruction_grid(grid, doses, columns, made["reconstructions_amplitude.png"], "amplitude")
        publish(staging, output, FILES)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = {name: output / name for name in FILES}
    return Report(rows, doses, columns, files, problems=[r.artifact_error for r in rows if r.artifact_error])
