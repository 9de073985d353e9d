"""The study report: a dose x view table, ``metrics.csv`` and figures from Phase E artifact roots.

Reads each root's ``training_manifest.json`` through :func:`fly64_manifest.load_training_manifest`
(validated, paths checked to stay inside the study) and each job's
``reconstruction.npz``; nothing else: the context of a cell (positions, measured
overlap, spacing basis, equal-positions control) was recorded in the job's entry.
Several roots (torch and tensorflow runs) sit side by side, the backend a column.
A *cell* is (backend, dose, view, gridsize); its jobs are the replicates (one per
training seed), summarised as mean ± standard deviation (n). Writes into the output folder:

``report.md``
    The table (one row per cell: context, then scores beside their flat-object
    floor), how to read it, and the figures.
``metrics.csv``
    Every metric and the context of every job (one row per job and seed, skipped views included).
``metric_vs_dose.png``
    SSIM, MS-SSIM, FRC50 and PSNR against dose (log x), one line per view and backend,
    error bars ± std across seeds, the flat-object floor as a grey band.
``reconstructions.png`` / ``reconstructions_amplitude.png``
    Aligned phase / amplitude reconstructions: rows doses, columns views (the first seed).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fly64_data.design import get_study_design
from fly64_data.npz_reader import NpzError
from fly64_manifest import DEFAULT_BACKEND
from fly64_manifest.models import thaw
from fly64_train.evaluation.evaluate import FRC_UNIT, RECONSTRUCTION_NPZ, load_reconstruction
from fly64_train.evaluation.figures import finite_or_none, plot_metric_vs_dose, plot_reconstruction_grid
from fly64_train.evaluation.metrics import METRIC_NAMES
from fly64_train.studies.job_context import JobContext
from fly64_train.studies.matrix import study_views

TABLE_METRICS = (("ssim", "SSIM"), ("pearson", "Pearson"), ("ms_ssim", "MS-SSIM"), ("frc50", "FRC50"),
                 ("psnr", "PSNR dB"))
#: The information score's recorded values (``metrics.information``) that the CSV and the table carry.
INFORMATION_KEYS = ("info", "nll_gap_truth_per_pattern", "nll_gap_recon_per_pattern")
FILES = ("report.md", "metrics.csv", "metric_vs_dose.png", "reconstructions.png", "reconstructions_amplitude.png")


@dataclass
class ReportRow:
    """One job of the study (one seed of a cell), or one skipped view."""

    dose: float
    view: str
    gridsize: int | None
    status: str
    metrics: dict[str, Any] | None = None
    job_dir: Path | None = None
    note: str = ""
    backend: str = DEFAULT_BACKEND
    """The backend that trained the job (:data:`fly64_manifest.BACKENDS`)."""
    seed: int | None = None
    """The replicate's training seed (``None``: a one-seed study)."""
    context: JobContext = field(default_factory=JobContext)
    """Positions and measured overlap of the data (empty in manifests before 1.1)."""
    epochs: int | None = None
    """Epochs completed."""
    minutes: float | None = None
    """Training wall time, minutes."""
    groups: int | None = None
    """Training groups (1.1 manifests)."""
    artifact_error: str | None = None
    """Why this job's ``reconstruction.npz`` could not be read (the report goes on without it)."""

    @property
    def cell(self) -> tuple[str, float, str, int | None]:
        return (self.backend, self.dose, self.view, self.gridsize)

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
                               "backend": self.backend, "seed": self.seed, "status": self.status,
                               "evaluated": self.evaluated,
                               **{f"context_{k}": v for k, v in self.context.as_json().items()},
                               "groups": self.groups, "epochs": self.epochs,
                               "training_minutes": None if self.minutes is None else round(self.minutes, 3),
                               "coverage": (self.metrics or {}).get("coverage") if self.evaluated else None}
        for component in ("amplitude", "phase"):
            for name in METRIC_NAMES:
                out[f"{component}_{name}"] = self.value(component, name)
        floor = (self.metrics or {}).get("floor") or {}
        for component in ("amplitude", "phase"):
            for name in METRIC_NAMES:
                out[f"floor_{component}_{name}"] = finite_or_none((floor.get(component) or {}).get(name))
        information = ((self.metrics or {}).get("information") or {}) if self.evaluated else {}
        for name in INFORMATION_KEYS:
            out[f"information_{name}"] = finite_or_none(information.get(name))
        out["note"] = self.note
        return out


@dataclass
class Cell:
    """The replicates of one (backend, dose, view, gridsize): their mean, standard deviation and count."""

    rows: list[ReportRow]
    """The jobs of the cell (one per seed), or its skip."""

    @property
    def first(self) -> ReportRow:
        return self.rows[0]

    @property
    def evaluated(self) -> list[ReportRow]:
        return [r for r in self.rows if r.evaluated]

    def stat(self, key: str) -> tuple[float | None, float | None, int]:
        """``(mean, std, n)`` of a :meth:`ReportRow.flat` key over the evaluated replicates.

        The standard deviation is the sample one (ddof 1), ``None`` with a single replicate.
        """
        values = [v for r in self.evaluated if (v := finite_or_none(r.flat().get(key))) is not None]
        if not values:
            return None, None, 0
        std = float(np.std(values, ddof=1)) if len(values) > 1 else None
        return float(np.mean(values)), std, len(values)

    def record(self) -> dict[str, Any]:
        """The figure's record: means, ``<key>_std`` and floors of every metric."""
        first = self.first
        out: dict[str, Any] = {"dose": first.dose, "view": first.view, "backend": first.backend,
                               "evaluated": bool(self.evaluated)}
        for component in ("amplitude", "phase"):
            for name in METRIC_NAMES:
                for key in (f"{component}_{name}", f"floor_{component}_{name}"):
                    mean, std, _ = self.stat(key)
                    out[key], out[f"{key}_std"] = mean, std
        return out


def collect(artifact_roots: str | os.PathLike | Sequence[str | os.PathLike]) -> list[ReportRow]:
    """Report rows for every job and skipped view of the manifests, ordered by dose, view, backend, seed."""
    from fly64_manifest import load_training_manifest

    roots = [artifact_roots] if isinstance(artifact_roots, (str, os.PathLike)) else list(artifact_roots)
    rows = []
    seen_bundles: set[str] = set()
    seen_skips: set[tuple] = set()
    for manifest in _newest_first([load_training_manifest(root) for root in unique_roots(roots)]):
        for job in manifest.jobs:
            if job.bundle_sha256 is not None:
                if job.bundle_sha256 in seen_bundles:
                    continue  # the same trained model under another root (a copy): one replicate, not two
                seen_bundles.add(job.bundle_sha256)
            note = ""
            if job.status in ("failed", "interrupted", "diverged"):
                note = job.error or job.status
            elif job.status == "success" and not job.metrics:
                note = "not evaluated (run fly64-train evaluate)"
            # Only a success is scored: a diverged job's metrics describe a broken model.
            metrics = dict(thaw(job.metrics)) if job.metrics and job.status == "success" else None
            groups = job.raw["result"].get("n_groups")
            rows.append(ReportRow(float(job.dose), job.view, job.gridsize, job.status, metrics, job.job_dir, note,
                                  backend=job.backend or manifest.backend, seed=job.seed,
                                  context=JobContext.from_json(job.context),
                                  epochs=job.epochs_completed if job.status == "success" else None,
                                  minutes=job.duration_s / 60 if job.status == "success" else None,
                                  groups=groups if isinstance(groups, int) else None))
        for skip in manifest.skipped_views:
            if (skip_key := (manifest.backend, float(skip.dose), skip.view, skip.gridsize)) in seen_skips:
                continue
            seen_skips.add(skip_key)
            rows.append(ReportRow(float(skip.dose), skip.view, skip.gridsize, "skipped", note=skip.reason,
                                  backend=manifest.backend))
    rows.sort(key=lambda r: (r.dose, _view_rank(r.view), r.gridsize or 0, r.backend, r.seed or 0))
    return rows


def unique_roots(roots: Sequence[str | os.PathLike]) -> list[Path]:
    """The roots without repeats: one folder named twice (``R``, a link to it, ``R/.``) is read once."""
    seen: set[str] = set()
    out = []
    for root in roots:
        real = os.path.realpath(root)
        if real not in seen:
            seen.add(real)
            out.append(Path(root))
    return out


def _newest_first(manifests: list[Any]) -> list[Any]:
    """Manifests by schema version, newest first (stable): of two copies of a job, the richer record is kept."""
    def version(manifest: Any) -> tuple[int, ...]:
        return tuple(int(p) for p in str(manifest.schema_version).split(".") if p.isdigit())

    return sorted(manifests, key=version, reverse=True)


def cells(rows: Sequence[ReportRow]) -> list[Cell]:
    """Rows grouped by (backend, dose, view, gridsize), in row order."""
    grouped: dict[tuple, list[ReportRow]] = {}
    for row in rows:
        grouped.setdefault(row.cell, []).append(row)
    return [Cell(members) for members in grouped.values()]


def _view_rank(view: str) -> tuple[int, str]:
    order = study_views(get_study_design())
    base = view.removesuffix("_matched")
    return (order.index(base) if base in order else len(order), view)


def view_label(row: ReportRow) -> str:
    """``dense (gs2)``; an equal-positions control says what it is matched to and how many positions it has."""
    label = f"{row.view} (gs{row.gridsize})" if row.gridsize else row.view
    if row.context.matched_to:
        positions = row.context.train_positions
        label += f", matched to {row.context.matched_to}: {positions if positions is not None else '?'} positions"
    return label


def _fmt(value: float | None, digits: int) -> str:
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
        text = _fmt(mean, digits) + (f" ± {std:.{digits}f}" if std is not None else "")
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
        str(groups[0]) if groups else "-", _fmt(ctx.overlap_fraction_target, 2), ctx.spacing_basis or "-",
        _fmt(ctx.nn_overlap, 3), _fmt(ctx.group_overlap, 3),
        f"{coverage:.0%}" if coverage is not None else "-",
        str(max(epochs)) if epochs else "-", f"{np.mean(minutes):.1f}" if minutes else "-",
    ]


def markdown_table(rows: list[ReportRow]) -> str:
    """One row per cell: its context, then amplitude and phase scores, each ``mean ± std (n) [floor]``."""
    head = ["dose", "view", *TABLE_CONTEXT, "info", "truth gap nats/pattern"]
    for component in ("amp", "phase"):
        head += [f"{component} {label}" for _, label in TABLE_METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for cell in cells(rows):
        parts = [f"{cell.first.dose:g}", view_label(cell.first), *_context_cells(cell), *_information(cell)]
        for component in ("amplitude", "phase"):
            parts += [_score(cell, component, name) for name, _ in TABLE_METRICS]
        lines.append("| " + " | ".join(parts) + " |")
    return "\n".join(lines)


#: Scores a contrast compares: (flat key, label).
CONTRAST_SCORES = (("information_info", "Δ info"), ("amplitude_ssim", "Δ amp SSIM"),
                   ("phase_ssim", "Δ phase SSIM"), ("amplitude_pearson", "Δ amp Pearson"))
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
        deltas = []
        for key, _ in CONTRAST_SCORES:
            ma, _, _ = a.stat(key)
            mb, _, _ = b.stat(key)
            deltas.append("-" if ma is None or mb is None else f"{ma - mb:+.3f}")
        lines.append("| " + " | ".join([
            f"{a.first.dose:g}" + (f" ({a.first.backend})" if a.first.backend != DEFAULT_BACKEND else ""),
            view_label(a.first), view_label(b.first), contrast.kind, ", ".join(contrast.differs()) or "nothing",
            f"{_fmt_int(a.first.context.train_positions)} / {_fmt_int(b.first.context.train_positions)}",
            f"{_fmt_int(groups[0])} / {_fmt_int(groups[1])}",
            f"{_fmt(a.first.context.nn_overlap, 3)} / {_fmt(b.first.context.nn_overlap, 3)}", *deltas,
        ]) + " |")
    return "\n".join(lines)


def _fmt_int(value: int | None) -> str:
    return "-" if value is None else str(value)


def metrics_csv(rows: list[ReportRow]) -> str:
    """Every metric and the context of every job, one row per job and seed (empty field = not available)."""
    buf = io.StringIO()
    records = [r.flat() for r in rows]
    fields = list(records[0]) if records else ["dose", "view"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for rec in records:
        writer.writerow({k: ("" if v is None else v) for k, v in rec.items()})
    return buf.getvalue()


def _column(row: ReportRow, several_backends: bool) -> str:
    return f"{row.view} ({row.backend})" if several_backends else row.view


def _load_cells(rows: list[ReportRow], several_backends: bool
                ) -> dict[tuple[float, str], dict[str, np.ndarray] | None]:
    """The first evaluated replicate of each (dose, column) for the reconstruction grids."""
    found: dict[tuple[float, str], dict[str, np.ndarray] | None] = {}
    for row in rows:
        key = (row.dose, _column(row, several_backends))
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
        + (f" Spacing basis of the overlap views: {', '.join(bases)}." if bases else ""),
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
            "losing scanned area, so its test region is smaller too.",
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
    rows: list[ReportRow]
    doses: list[float]
    views: list[str]
    files: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """One line per job artifact the report could not read (it went on without it)."""


def _publish(staging: Path, output: Path) -> None:
    """Move the finished report files from ``staging`` into ``output``.

    A new ``output`` is the staging folder renamed (one atomic step). An existing one may hold the
    user's own files, so the report's files are moved in one by one (each rename atomic), after
    every destination was checked to be replaceable: nothing is replaced unless all can be.
    """
    if not output.exists() and not output.is_symlink():
        os.rename(staging, output)
        return
    if output.is_symlink() or not output.is_dir():
        raise ValueError(f"{output}: not a folder (the report output must be one)")
    for name in FILES:
        target = output / name
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise ValueError(f"{target}: in the way of the report (not a regular file); nothing was replaced")
    for name in FILES:
        os.replace(staging / name, output / name)


def write_report(artifact_roots: str | os.PathLike | Sequence[str | os.PathLike],
                 output: str | os.PathLike) -> Report:
    """Write the report files into ``output`` (created if needed), all or nothing.

    Every manifest and artifact is read before anything is written, the files are made in a
    staging folder beside ``output``, and only when all of them exist are they moved in
    (:func:`_publish`): a failure leaves an existing report as it was, never half replaced.
    """
    import tempfile

    roots = unique_roots([artifact_roots] if isinstance(artifact_roots, (str, os.PathLike)) else artifact_roots)
    output = Path(output)
    rows = collect(roots)
    several_backends = len({r.backend for r in rows}) > 1
    doses = sorted({r.dose for r in rows})
    columns = list(dict.fromkeys(_column(r, several_backends) for r in rows))
    grid = _load_cells(rows, several_backends)  # first: an unreadable artifact becomes a note in report.md
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
        _publish(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = {name: output / name for name in FILES}
    return Report(rows, doses, columns, files, problems=[r.artifact_error for r in rows if r.artifact_error])
