"""The report's rows: one per job (one seed of a cell) or skipped view, read from the training manifests.

:func:`collect` reads each root's ``training_manifest.json`` through
:func:`fly64_manifest.load_training_manifest` (validated, paths checked to stay inside the study); the
context of a cell (positions, measured overlap, spacing basis, equal-positions control) was recorded in the
job's entry. A *cell* is (backend, dose, view, gridsize); its rows are the replicates, one per training seed.
A job evaluated with refinement also yields its "PINN + refine" row (:meth:`ReportRow.refined`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fly64_data.design import get_study_design
from fly64_manifest import DEFAULT_BACKEND, RefineSettings, Scores
from fly64_manifest.models import thaw
from fly64_train.evaluation.metrics import METRIC_NAMES
from fly64_train.studies.job_context import JobContext
from fly64_train.studies.matrix import study_views

#: The information score's recorded values (``metrics.information``) that the CSV and the table carry.
INFORMATION_KEYS = ("info", "nll_gap_truth_per_pattern", "nll_gap_recon_per_pattern")
#: The name of the method a job's ``metrics.refine`` block scores (schema ``refined_metrics``).
REFINE_METHOD = "PINN + refine"


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
    refine_row: bool = False
    """True on a job's "PINN + refine" row (:meth:`refined`); False on plain prediction's."""
    refined_with: RefineSettings | None = None
    """On a "PINN + refine" row: the fine-tuning's settings; ``None`` where they were not recorded (or do not
    parse, e.g. ``steps`` without ``lr``) and on plain prediction's row."""
    refine_s: float | None = None
    """On a "PINN + refine" row: seconds spent fine-tuning (``metrics.refine.reconstruction.refine_s``)."""

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

    def refined(self) -> ReportRow | None:
        """This job's "PINN + refine" as a row of its own, or ``None`` when its evaluation did not refine.

        Its scores and information score are those of ``metrics.refine``; coverage and the flat-object
        floor are the job's own, because the refined copy is scored on the same region after the same
        alignment. Settings and time are read through :class:`fly64_manifest.Scores`; settings that were
        not recorded or do not parse leave ``refined_with`` ``None`` (the row stays: its scores are there,
        as fly64-compare shows them, and the report labels it "settings not recorded").
        """
        if not self.evaluated or self.refine_row:
            return None
        block = self.metrics.get("refine")
        typed = Scores.from_metrics(self.metrics).refine
        if not isinstance(block, dict) or typed is None \
                or not isinstance(block.get("amplitude"), dict) or not isinstance(block.get("phase"), dict):
            return None  # no refine block, or one without scores to show: plain prediction only
        metrics = {"amplitude": block["amplitude"], "phase": block["phase"], "information": block.get("information"),
                   "floor": self.metrics.get("floor"), "coverage": self.metrics.get("coverage")}
        return replace(self, metrics=metrics, note="", artifact_error=None, refine_row=True,
                       refined_with=typed.refined_with,
                       refine_s=None if typed.reconstruction is None else typed.reconstruction.refine_s)

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


def finite_or_none(value: Any) -> float | None:
    """A float for plotting/tabulating, or None for missing and non-finite values."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
