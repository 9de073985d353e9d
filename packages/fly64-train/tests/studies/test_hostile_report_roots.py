"""Hostile report inputs (issue 20, section 2): one job is one replicate however it is named, and a
non-finite metric is missing, never a score."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest

from fly64_train.cli import main as train_main
from fly64_train.evaluation.metrics import METRIC_NAMES
from fly64_train.studies.report_rows import ReportRow
from fly64_train.studies.report_table import markdown_table


@pytest.fixture(scope="module")
def evaluated(tiny_study_data, tmp_path_factory) -> Path:
    """An artifact root with one trained and evaluated job (seconds)."""
    root = tmp_path_factory.mktemp("report_roots")
    assert train_main(["run", "--phase-c-root", str(tiny_study_data / "phase_c"),
                       "--phase-d-root", str(tiny_study_data / "phase_d"), "--artifact-root", str(root / "e"),
                       "--dose", "1000", "--view", "baseline", "--max-epochs", "1", "--n-groups", "8",
                       "--batch-size", "4", "--base-width", "4", "--accelerator", "cpu", "--logger", "none"]) == 0
    return root / "e"


def _report(tmp_path, *roots) -> tuple[str, list[dict]]:
    out = tmp_path / "report"
    assert train_main(["report", "--artifact-root", *map(str, roots), "--output", str(out)]) == 0
    with (out / "metrics.csv").open() as fh:
        return (out / "report.md").read_text(), list(csv.DictReader(fh))


def test_one_root_under_three_names_is_one_replicate(evaluated, tmp_path):
    link = tmp_path / "e_link"
    link.symlink_to(evaluated, target_is_directory=True)
    text, rows = _report(tmp_path, evaluated, link, f"{evaluated}/.")
    assert len(rows) == 1
    assert "(n=2)" not in text and "(n=3)" not in text and "± 0.000" not in text


def test_a_copy_of_a_root_beside_the_original_is_one_replicate_with_its_context(evaluated, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(evaluated, copy)
    alone, _ = _report(tmp_path / "a", evaluated)
    text, rows = _report(tmp_path / "b", copy, evaluated)
    assert len(rows) == 1 and "(n=2)" not in text
    table = [line for line in text.splitlines() if line.startswith("| ") and "baseline" in line]
    assert table == [line for line in alone.splitlines() if line.startswith("| ") and "baseline" in line]


@pytest.mark.slow  # the plain copy above pins de-duplication by sha256 in the fast suite
def test_a_schema_1_0_copy_listed_first_neither_doubles_the_job_nor_blanks_its_context(evaluated, tmp_path):
    copy = tmp_path / "old_copy"
    shutil.copytree(evaluated, copy)
    path = copy / "training_manifest.json"
    doc = json.loads(path.read_text())
    doc["schema_version"] = "1.0"
    for job in doc["jobs"]:
        for key in ("context", "seed"):
            job.pop(key, None)
        for key in ("n_groups", "artifacts"):
            job["result"].pop(key, None)
    path.write_text(json.dumps(doc))
    alone, _ = _report(tmp_path / "a", evaluated)
    text, rows = _report(tmp_path / "b", copy, evaluated)
    assert len(rows) == 1 and "(n=2)" not in text
    table = [line for line in text.splitlines() if line.startswith("| ") and "baseline" in line]
    assert table == [line for line in alone.splitlines() if line.startswith("| ") and "baseline" in line]


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_metric_is_shown_as_missing_never_as_a_score(bad):
    scores = {name: 0.5 for name in METRIC_NAMES}
    metrics = {"amplitude": {**scores, "frc50": bad, "psnr": bad}, "phase": dict(scores)}
    table = markdown_table([ReportRow(1000.0, "baseline", 1, "success", metrics)])
    row = next(line for line in table.splitlines() if "baseline" in line)
    assert ">=0.5" not in row and "inf" not in row, row
    never = {"amplitude": {**scores, "frc50": None}, "phase": dict(scores)}
    assert ">=0.5" in markdown_table([ReportRow(1000.0, "baseline", 1, "success", never)])
