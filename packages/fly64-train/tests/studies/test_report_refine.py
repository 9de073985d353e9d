"""A real tiny job re-evaluated by the study layer with refinement (#21); its report row "PINN + refine" (#23)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from fly64_manifest import load_training_manifest
from fly64_train.cli import main as cli_main
from fly64_train.evaluation.refine import RefineConfig
from fly64_train.studies.reevaluate import NothingToEvaluate, ReevaluationRequest, reevaluate
from fly64_train.studies.report import write_report

TINY_TRAIN = ["--max-epochs", "1", "--n-groups", "8", "--batch-size", "4", "--base-width", "4", "--deterministic",
              "--logger", "none", "--dose", "1000", "--view", "baseline"]
REFINE = RefineConfig(steps=3, lr=1e-3)


@pytest.fixture(scope="module")
def roots(tiny_study_data, tmp_path_factory) -> tuple[Path, Path, object, str]:
    """One trained job: a copy as ``run`` left it (plain), and the root re-evaluated with refinement."""
    base = tmp_path_factory.mktemp("report_refine")
    refined = base / "refined" / "phase_e"
    assert cli_main(["--phase-c-root", str(tiny_study_data / "phase_c"), "--phase-d-root",
                     str(tiny_study_data / "phase_d"), "--artifact-root", str(refined), *TINY_TRAIN]) == 0
    plain = base / "plain" / "phase_e"
    shutil.copytree(refined, plain, symlinks=True)
    out = io.StringIO()
    result = reevaluate(ReevaluationRequest(refined, batch_size=8, device="cpu", refine=REFINE), out)
    return plain, refined, result, out.getvalue()


def _table(report_md: str) -> list[dict[str, str]]:
    lines = [line for line in report_md.splitlines() if line.startswith("| ")]
    head = [h.strip() for h in lines[0].strip("|").split("|")]
    return [dict(zip(head, [c.strip() for c in line.strip("|").split("|")], strict=True)) for line in lines[1:]]


def test_the_study_layer_reevaluates_and_records_the_refined_method(roots):
    _, refined, result, printed = roots
    assert (result.jobs, result.evaluated, result.failed) == (1, 1, [])
    assert result.manifest_path == refined / "training_manifest.json" and result.failure() is None
    assert result.summary() == f"manifest: {refined / 'training_manifest.json'} (1 job(s) evaluated)"
    (job,) = load_training_manifest(refined).jobs
    block = job.metrics["refine"]
    assert (block["refine"]["steps"], block["refine"]["lr"]) == (3, 1e-3)
    scores_line, refine_line = printed.splitlines()
    assert scores_line.startswith("dose 1000 baseline gs1: amplitude SSIM ") and scores_line.endswith(str(job.job_dir))
    assert refine_line.startswith(f"dose 1000 baseline gs1: + refine (3 steps, "
                                  f"{block['reconstruction']['refine_s']:.1f} s): amplitude SSIM ")


def test_filters_that_select_no_job_are_refused_before_anything_is_written(roots):
    _, refined, _, _ = roots
    before = (refined / "training_manifest.json").read_bytes()
    with pytest.raises(NothingToEvaluate, match="no successful job matches the filters"):
        reevaluate(ReevaluationRequest(refined, views=("dense",)), io.StringIO())
    assert (refined / "training_manifest.json").read_bytes() == before


def test_the_report_shows_pinn_plus_refine_beside_plain_prediction(roots, tmp_path):
    _, refined, _, _ = roots
    write_report(refined, tmp_path / "report")
    report_md = (tmp_path / "report" / "report.md").read_text()
    (job,) = load_training_manifest(refined).jobs
    metrics, block = job.metrics, job.metrics["refine"]
    plain_row, refine_row = _table(report_md)
    assert plain_row["view"] == "baseline (gs1)"
    assert refine_row["view"] == (f"baseline (gs1): PINN + refine (3 steps, lr 0.001, "
                                  f"{block['reconstruction']['refine_s']:.1f} s)")
    for component, prefix in (("amplitude", "amp"), ("phase", "phase")):
        floor = f"[{metrics['floor'][component]['ssim']:.3f}]"
        # Each method's own score, both read against the same flat-object floor (same region, same alignment).
        assert plain_row[f"{prefix} SSIM"] == f"{metrics[component]['ssim']:.3f} {floor}"
        assert refine_row[f"{prefix} SSIM"] == f"{block[component]['ssim']:.3f} {floor}"
    assert refine_row["info"] == f"{block['information']['info']:.3f}"
    assert plain_row["info"] == f"{metrics['information']['info']:.3f}"
    assert "`PINN + refine` row below a cell" in report_md
    # metrics.csv stays one row per job.
    with (tmp_path / "report" / "metrics.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 1


def test_a_cell_without_refinement_keeps_its_one_row(roots, tmp_path):
    plain, _, _, _ = roots
    write_report(plain, tmp_path / "report")
    report_md = (tmp_path / "report" / "report.md").read_text()
    (row,) = _table(report_md)
    assert row["view"] == "baseline (gs1)"
    assert "PINN + refine" not in report_md


def test_a_refine_block_whose_settings_do_not_parse_keeps_its_row_labelled_settings_not_recorded(roots, tmp_path):
    from fly64_manifest.models import thaw
    from fly64_train.studies.report_rows import Cell, ReportRow
    from fly64_train.studies.report_table import refine_label, refined_cells

    _, refined, _, _ = roots
    (job,) = load_training_manifest(refined).jobs
    # The real refined job's metrics with lr dropped from its settings, as a report row.
    metrics = thaw(job.metrics)
    metrics["refine"]["refine"] = {"steps": 300}
    row = ReportRow(dose=1000.0, view="baseline", gridsize=1, status="success", metrics=metrics)
    kept = row.refined()
    assert kept is not None and kept.refine_row and kept.refined_with is None
    assert kept.value("amplitude", "ssim") == pytest.approx(metrics["refine"]["amplitude"]["ssim"])
    assert kept.refined() is None  # a refine row has no refine row of its own
    (cell,) = refined_cells(Cell([row]))
    assert refine_label(cell) == (f"baseline (gs1): PINN + refine (settings not recorded, "
                                  f"{metrics['refine']['reconstruction']['refine_s']:.1f} s)")

    # Through the whole report: a manifest the schema accepts (steps 3.0 is a JSON integer) whose settings
    # the typed reader cannot use (steps must be an int) still shows the row.
    copy = tmp_path / "phase_e"
    shutil.copytree(refined, copy, symlinks=True)
    doc = json.loads((copy / "training_manifest.json").read_text())
    (entry,) = doc["jobs"]
    entry["result"]["metrics"]["refine"]["refine"]["steps"] = 3.0
    (copy / "training_manifest.json").write_text(json.dumps(doc))
    assert load_training_manifest(copy).jobs[0].scores.refine.refined_with is None
    write_report(copy, tmp_path / "report")
    report_md = (tmp_path / "report" / "report.md").read_text()
    plain_row, refine_row = _table(report_md)
    assert refine_row["view"].startswith("baseline (gs1): PINN + refine (settings not recorded, ")
    block = entry["result"]["metrics"]["refine"]
    assert refine_row["amp SSIM"].startswith(f"{block['amplitude']['ssim']:.3f} ")
