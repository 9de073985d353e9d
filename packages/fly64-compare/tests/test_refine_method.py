""""PINN + refine" in the comparison: a method of its own beside PINN and the iterative one, where it was run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from fly64_compare.cli import main
from fly64_manifest import load_iterative_manifest, load_training_manifest

REFINE_COLUMNS = ("refine_state", "refine_mean", "refine_std", "refine_n", "refine_s_per_1000",
                  "refine_fine_tuning_s_per_1000", "refine_device", "refine_above_floor", "refine_winner",
                  "refine_margin", "refine_spread", "refine_within_spread")


def _run(study: Path) -> int:
    return main(["run", "--phase-e-root", str(study / "phase_e"), "--phase-f-root", str(study / "phase_f"),
                 "--output", str(study / "compare")])


def _rows(study: Path) -> list[dict[str, str]]:
    with (study / "compare" / "comparison.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_a_refined_cell_shows_pinn_plus_refine_as_a_method_with_its_time_and_others_say_nothing(
        study_copy, training_jobs, phase_f, refine):
    refine(study_copy, "1000")  # dose 1000 refined, dose 10000 not
    phase_f.write(study_copy, [phase_f.job(study_copy, j, noise=0.05) for j in training_jobs(study_copy)])
    assert _run(study_copy) == 0
    pinn, iterative = load_training_manifest(study_copy / "phase_e"), load_iterative_manifest(study_copy / "phase_f")
    refined = pinn.job(1000, "baseline").scores.refine
    assert refined is not None and pinn.job(10000, "baseline").scores.refine is None
    rows = _rows(study_copy)
    for row in rows:
        dose = float(row["dose"])
        if dose == 10000:  # not refined: its columns are empty, and the winner is PINN's or the iterative's
            assert all(row[c] == "" for c in REFINE_COLUMNS), row
            assert row["winner"] in ("", "PINN", "iterative")
            continue
        component, name = row["metric"].split(".")
        values = {"PINN": pinn.job(dose, "baseline").metric(component, name),
                  "PINN + refine": refined.metric(component, name),
                  "iterative": iterative.job(dose, "baseline").metric(component, name)}
        assert row["refine_state"] == "ok" and row["refine_n"] == "1" and row["refine_device"] == "cpu"
        if values["PINN + refine"] is not None:
            assert float(row["refine_mean"]) == pytest.approx(values["PINN + refine"])
            floor = pinn.job(dose, "baseline").scores.floor(component, name)
            if floor is not None:
                assert row["refine_above_floor"] == str(values["PINN + refine"] > floor).lower()
        # The winner is PINN against the iterative method whatever the refinement did; "PINN + refine"
        # against the iterative method is a verdict of its own, in the refine_* columns.
        for method, (winner, margin) in {"PINN": ("winner", "margin"),
                                         "PINN + refine": ("refine_winner", "refine_margin")}.items():
            ours, theirs = values[method], values["iterative"]
            if ours is None or theirs is None:
                assert row[winner] == row[margin] == "", row
                continue
            assert row[winner] == ("" if ours == theirs else method if ours > theirs else "iterative"), row
            assert float(row[margin]) == pytest.approx(abs(ours - theirs))
        # Its time per 1,000 patterns is fine-tuning plus prediction, with the fine-tuning's share beside it.
        timing = refined.reconstruction
        assert float(row["refine_s_per_1000"]) == pytest.approx(timing.wall_s / timing.n_patterns * 1000)
        assert float(row["refine_fine_tuning_s_per_1000"]) == pytest.approx(timing.refine_s / timing.n_patterns * 1000)
        assert float(row["refine_s_per_1000"]) > float(row["refine_fine_tuning_s_per_1000"]) > 0
    md = (study_copy / "compare" / "comparison.md").read_text()
    ssim_table = md.split("## phase SSIM")[1].split("##")[0]
    assert "| dose | view | PINN | PINN + refine | iterative | flat floor | winner | PINN + refine vs iterative |" \
        in ssim_table
    assert f"| 1000 | baseline | {pinn.job(1000, 'baseline').metric('phase', 'ssim'):.3f}" in ssim_table
    assert f"{refined.metric('phase', 'ssim'):.3f}" in ssim_table.split("| 1000 | baseline |")[1].splitlines()[0]
    # The unrefined cell's PINN + refine column is empty: nothing to say.
    row_10k = next(line for line in ssim_table.splitlines() if line.startswith("| 10000 | baseline |"))
    assert row_10k.split(" | ")[3] == ""
    time_table = md.split("## Reconstruction time")[1].split("##")[0]
    assert "| dose | view | PINN | PINN + refine | iterative |" in time_table and "(fine-tuning " in time_table
    assert "PINN + refine s / 1k patterns" in md


def test_without_a_refinement_the_comparison_has_no_pinn_plus_refine_anywhere(study_copy, training_jobs, phase_f):
    phase_f.write(study_copy, [phase_f.job(study_copy, j, noise=0.05) for j in training_jobs(study_copy)])
    assert _run(study_copy) == 0
    assert "PINN + refine" not in (study_copy / "compare" / "comparison.md").read_text()
    rows = _rows(study_copy)
    assert rows and all(row[c] == "" for row in rows for c in REFINE_COLUMNS)


def test_a_metric_an_older_refine_block_lacks_leaves_pinn_against_iterative_in_place(
        study_copy, training_jobs, phase_f, refine):
    from fly64_manifest import read_json, write_json

    refine(study_copy, "1000")
    path = study_copy / "phase_e" / "training_manifest.json"
    doc = read_json(path)
    job = next(j for j in doc["jobs"] if float(j["dose"]) == 1000)
    block = job["result"]["metrics"]["refine"]
    block["phase"]["frc50"] = None  # a refinement whose FRC never crossed 0.5
    block.pop("information", None)  # and one written before the information score was refined too
    write_json(path, doc, "training_manifest")
    phase_f.write(study_copy, [phase_f.job(study_copy, j, noise=0.05) for j in training_jobs(study_copy)])
    assert _run(study_copy) == 0
    pinn, iterative = load_training_manifest(study_copy / "phase_e"), load_iterative_manifest(study_copy / "phase_f")
    rows = {r["metric"]: r for r in _rows(study_copy) if float(r["dose"]) == 1000}
    lacking = ["phase.frc50"] + (["information.info"] if "information.info" in rows else [])
    for key in lacking:
        row = rows[key]
        a, b = (m.job(1000, "baseline").metric(*key.split(".")) for m in (pinn, iterative))
        assert row["refine_state"] == "ok" and row["refine_mean"] == "" and row["refine_winner"] == ""
        assert row["refine_margin"] == "", row
        if a is not None and b is not None:  # PINN against iterative does not need the refinement
            assert float(row["margin"]) == pytest.approx(abs(a - b)), row
    md = (study_copy / "compare" / "comparison.md").read_text()
    frc = md.split("## phase FRC 0.5")[1].split("##")[0]
    row_1k = next(line for line in frc.splitlines() if line.startswith("| 1000 | baseline |"))
    assert row_1k.rstrip(" |").endswith("PINN + refine did not record it")
    assert "PINN + refine did not record it" not in row_1k.split(" | ")[-2]
