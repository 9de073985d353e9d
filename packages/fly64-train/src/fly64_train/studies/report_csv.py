"""``metrics.csv``: every metric and the context of every job, one row per job and seed."""

from __future__ import annotations

import csv
import io

from fly64_train.studies.report_rows import ReportRow


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
