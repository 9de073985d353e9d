"""Flatten a training manifest into rows for a table or JSON."""

from __future__ import annotations

from typing import Any

from fly64_manifest.models import VIEWS, TrainingJob, TrainingManifest, thaw

#: Metric columns of the default table, as (component, metric name).
DEFAULT_METRICS: tuple[tuple[str, str], ...] = (
    ("amplitude", "psnr"), ("amplitude", "ssim"), ("phase", "psnr"), ("phase", "ssim"), ("phase", "frc50"),
)


def _order(job: TrainingJob) -> tuple[float, int, int]:
    return (float(job.dose), VIEWS.index(job.view) if job.view in VIEWS else len(VIEWS), job.gridsize)


def job_rows(manifest: TrainingManifest) -> list[dict[str, Any]]:
    """One plain dict per job (sorted by dose, view, gridsize), then one per skipped view.

    Metrics are flattened to ``"<component>.<name>"`` keys; paths are absolute strings.
    """
    rows: list[dict[str, Any]] = []
    for job in sorted(manifest.jobs, key=_order):
        row: dict[str, Any] = {
            "dose": job.dose, "view": job.view, "gridsize": job.gridsize, "status": job.status,
            "epochs_completed": job.epochs_completed, "final_loss": job.final_loss,
            "bundle_path": str(job.bundle_path) if job.bundle_path else None,
            "bundle_sha256": job.bundle_sha256, "bundle_size_bytes": job.bundle_size_bytes,
            "error": job.error,
        }
        for component, scores in thaw(job.metrics or {}).items():
            if isinstance(scores, dict):
                row.update({f"{component}.{name}": value for name, value in scores.items()})
        rows.append(row)
    for skip in sorted(manifest.skipped_views, key=lambda s: (float(s.dose), s.view)):
        rows.append({"dose": skip.dose, "view": skip.view, "gridsize": skip.gridsize,
                     "status": "skipped_view", "reason": skip.reason})
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(rows: list[dict[str, Any]], metrics: tuple[tuple[str, str], ...] = DEFAULT_METRICS) -> str:
    """Fixed-width text table: dose, view, gs, status, epochs, loss and the chosen metrics."""
    columns = [("dose", "dose"), ("view", "view"), ("gridsize", "gs"), ("status", "status"),
               ("epochs_completed", "epochs"), ("final_loss", "loss")]
    columns += [(f"{c}.{n}", f"{c[:3]}.{n}") for c, n in metrics]
    cells = [[header for _, header in columns]]
    for row in rows:
        line = [_cell(row.get(key)) for key, _ in columns]
        line[0] = f"{row['dose']:g}"  # doses are photon counts: 10000, not 1e+04
        if row["status"] == "skipped_view":
            line[4:] = [row.get("reason", "")]  # a skipped view has no results; say why instead
        cells.append(line)
    # A skipped view's trailing reason spans the result columns, so it does not set their widths.
    widths = [max(len(line[i]) for line in cells if len(line) == len(columns) or i < len(line) - 1)
              for i in range(len(columns))]
    out = []
    for line in cells:
        if len(line) < len(columns):
            out.append("  ".join(c.ljust(w) for c, w in zip(line[:-1], widths, strict=False)) + "  " + line[-1])
        else:
            out.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    return "\n".join(out)
