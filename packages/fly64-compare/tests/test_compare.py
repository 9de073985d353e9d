"""``fly64-compare run`` on a tiny real study: winners, missing and failed cells, bad inputs, figures."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fly64_compare.cli import main
from fly64_manifest import load_iterative_manifest, load_training_manifest

PNG = b"\x89PNG\r\n\x1a\n"


def _run(study: Path, out: Path | None = None) -> int:
    return main(["run", "--phase-e-root", str(study / "phase_e"), "--phase-f-root", str(study / "phase_f"),
                 "--output", str(out or study / "compare")])


def _rows(study: Path) -> list[dict[str, str]]:
    with (study / "compare" / "comparison.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_the_comparison_names_the_better_method_per_metric_and_each_time(study_copy, training_jobs, phase_f, capsys):
    phase_f.write(study_copy, [phase_f.job(study_copy, j, noise=0.05) for j in training_jobs(study_copy)])
    assert _run(study_copy) == 0
    out = study_copy / "compare"
    assert sorted(p.name for p in out.iterdir()) == [
        "comparison.csv", "comparison.md", "images_baseline.png", "metrics_vs_dose.png"]
    pinn, iterative = load_training_manifest(study_copy / "phase_e"), load_iterative_manifest(study_copy / "phase_f")
    rows = _rows(study_copy)
    assert {(r["dose"], r["metric"]) for r in rows} >= {("1000.0", "phase.ssim"), ("10000.0", "amplitude.frc50")}
    for row in rows:
        component, name = row["metric"].split(".")
        a = pinn.job(float(row["dose"]), "baseline").metric(component, name)
        b = iterative.job(float(row["dose"]), "baseline").metric(component, name)
        if a is None or b is None:
            assert row["winner"] == "" and row["margin"] == ""
            continue
        expected = "" if a == b else ("PINN" if a > b else "iterative")
        assert (row["winner"], float(row["margin"])) == (expected, pytest.approx(abs(a - b))), row
        assert row["spread"] == "" and float(row["pinn_mean"]) == pytest.approx(a)  # one seed each: no spread
        floor = pinn.job(float(row["dose"]), "baseline").scores.floor(component, name)
        if floor is not None:  # a value no better than the flat object is flagged
            assert row["pinn_above_floor"] == str(a > floor).lower(), row
            assert row["iterative_above_floor"] == str(b > floor).lower(), row
    # The time per 1,000 patterns is each method's own record, on its device.
    row = rows[0]
    job = pinn.job(float(row["dose"]), "baseline")
    assert float(row["pinn_s_per_1000"]) == pytest.approx(job.seconds_per_1000_patterns)
    assert row["pinn_device"] == "cpu" == row["iterative_device"]
    assert float(row["iterative_s_per_1000"]) == pytest.approx(
        iterative.job(float(row["dose"]), "baseline").seconds_per_1000_patterns)
    md = (out / "comparison.md").read_text()
    assert "(1 seed, spread unknown)" in md and "s on cpu" in md and "flat floor" in md
    # The 1-epoch PINN sits on its phase SSIM floor: its value is flagged in the per-metric table.
    job = pinn.job(1000, "baseline")
    if job.metric("phase", "ssim") <= job.scores.floor("phase", "ssim"):
        ssim_table = md.split("## phase SSIM")[1].split("##")[0]
        assert f"| 1000 | baseline | {job.metric('phase', 'ssim'):.3f} (≤ floor) |" in ssim_table
    for name in ("metrics_vs_dose.png", "images_baseline.png"):
        assert (out / name).read_bytes()[:8] == PNG and (out / name).stat().st_size > 20_000
    assert "2 cells (2 with both methods)" in capsys.readouterr().out


def test_seed_replicates_give_mean_std_and_a_verdict_against_their_spread(study_copy, training_jobs, phase_f):
    jobs = training_jobs(study_copy)
    phase_f.write(study_copy, [phase_f.job(study_copy, j, noise=0.05, seed=s) for j in jobs
                                          for s in (0, 1)])
    assert _run(study_copy) == 0
    iterative = load_iterative_manifest(study_copy / "phase_f")
    row = next(r for r in _rows(study_copy) if r["dose"] == "1000.0" and r["metric"] == "phase.ssim")
    values = [iterative.job(1000, "baseline", seed=s).metric("phase", "ssim") for s in (0, 1)]
    assert row["iterative_n"] == "2" and float(row["iterative_mean"]) == pytest.approx(sum(values) / 2)
    assert float(row["spread"]) == pytest.approx(float(row["iterative_std"]))  # PINN's one seed adds none
    assert row["within_spread"] == str(float(row["margin"]) <= float(row["spread"])).lower()
    assert " ± " in (study_copy / "compare" / "comparison.md").read_text()


def test_a_failed_and_a_missing_cell_say_so_in_the_table_and_notes(study_copy, training_jobs, phase_f, capsys):
    ok, failing = sorted(training_jobs(study_copy), key=lambda j: j["dose"])
    phase_f.write(study_copy, [phase_f.job(study_copy, ok, noise=0.05),
                                          phase_f.job(study_copy, failing, noise=0.05,
                                                        fail="RuntimeError: pty-chi diverged")])
    assert _run(study_copy) == 0
    md = (study_copy / "compare" / "comparison.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| 10000 | baseline |"))
    assert "| no: iterative failed | — |" in row and row.endswith("| failed |")
    assert "| 10000 | baseline | 0." in md and "no comparison: iterative failed |" in md  # per-metric tables
    assert "- dose 10000 baseline, iterative: failed: RuntimeError: pty-chi diverged" in md
    assert "Traceback" not in md + capsys.readouterr().err
    # No Phase F at all: every iterative cell is "not run", the PINN side is still reported.
    (study_copy / "phase_f" / "iterative_manifest.json").unlink()
    assert _run(study_copy) == 0
    md = (study_copy / "compare" / "comparison.md").read_text()
    assert "- iterative not run: no " in md and "| not run |" in md
    assert {r["iterative_state"] for r in _rows(study_copy)} == {"not run"}


def test_bad_inputs_are_one_line_naming_the_file_and_keep_the_last_output(study_copy, training_jobs, phase_f, capsys):
    phase_f.write(study_copy, [phase_f.job(study_copy, j, noise=0.05) for j in training_jobs(study_copy)])
    assert _run(study_copy) == 0
    before = (study_copy / "compare" / "comparison.md").read_bytes()
    capsys.readouterr()
    product = study_copy / "phase_f" / "dose_1000" / "baseline" / "gs1" / "reconstruction.h5"
    data = bytearray(product.read_bytes())
    data[-1] ^= 0xFF
    product.write_bytes(bytes(data))
    assert _run(study_copy) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(product) in err[0] and "sha256" in err[0]
    manifest = study_copy / "phase_f" / "iterative_manifest.json"
    manifest.write_text("{not json")
    assert _run(study_copy) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "iterative_manifest.json" in err[0]
    assert (study_copy / "compare" / "comparison.md").read_bytes() == before
    assert [p.name for p in study_copy.iterdir() if p.name.startswith(".")] == []  # no temporary folder left


def test_an_output_folder_overlapping_an_input_root_is_a_usage_error(study_copy, capsys):
    with pytest.raises(SystemExit) as exc:
        _run(study_copy, out=study_copy)  # would hold (and on replacing, remove) phase_e
    assert exc.value.code == 2 and "--phase-e-root" in capsys.readouterr().err
    assert (study_copy / "phase_e" / "training_manifest.json").is_file()


def test_fly64_compare_imports_no_framework_and_no_fly64_train():
    code = ("import sys, fly64_compare, fly64_compare.cli, fly64_compare.run, fly64_compare.images\n"
            "bad = [m for m in ('torch', 'lightning', 'tensorflow', 'keras', 'ptychi', 'fly64_train',"
            " 'fly64_iterative') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_test_split_whose_bytes_differ_from_its_phase_c_record_is_refused(study_copy, training_jobs, phase_f,
                                                                            capsys):
    phase_f.write(study_copy, [phase_f.job(study_copy, j, noise=0.05) for j in training_jobs(study_copy)])
    linked = study_copy / "phase_c"
    target = linked.resolve()
    linked.unlink()
    shutil.copytree(target, linked)  # a private Phase C to tamper with
    split = linked / "dose_1000" / "patched_test.npz"
    split.write_bytes(split.read_bytes() + b"\0")
    assert _run(study_copy) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "patched_test.npz" in err[0] and "sha256" in err[0]
    assert not (study_copy / "compare").exists()


def test_a_diverged_pinn_job_is_named_as_such_not_compared(study_copy, training_jobs, phase_f):
    from fly64_manifest import read_json, write_json

    phase_f.write(study_copy, [phase_f.job(study_copy, j, noise=0.05) for j in training_jobs(study_copy)])
    path = study_copy / "phase_e" / "training_manifest.json"
    doc = read_json(path)
    job = next(j for j in doc["jobs"] if j["dose"] == 10000)
    job["result"].update(status="diverged", error="loss is not finite at epoch 1")  # its bundle and scores kept
    write_json(path, doc, "training_manifest")
    assert _run(study_copy) == 0
    md = (study_copy / "compare" / "comparison.md").read_text()
    assert "| 10000 | baseline | no: PINN diverged | — |" in md
    assert "- dose 10000 baseline, PINN: diverged: loss is not finite at epoch 1" in md
    assert {r["pinn_state"] for r in _rows(study_copy) if r["dose"] == "10000.0"} == {"diverged"}


def test_an_iterative_side_started_from_the_pinn_is_named_in_the_notes(study_copy, training_jobs, phase_f):
    jobs = [phase_f.job(study_copy, j, noise=0.05) for j in training_jobs(study_copy)]
    start = "pinn: Phase E's stitched prediction of the same photons"
    jobs[0]["engine_options"] = {**jobs[0]["engine_options"], "object_start": start}
    phase_f.write(study_copy, jobs)
    assert _run(study_copy) == 0
    notes = (study_copy / "compare" / "comparison.md").read_text().split("## Notes")[1]
    assert f'1 of {len(jobs)} iterative jobs started from "{start}"' in notes and "PINN + LSQML" in notes
    # Both methods are still compared (the note is not read as a phase that did not run).
    assert "iterative not run" not in notes and "PINN not run" not in notes
    # A flat start says nothing.
    jobs[0]["engine_options"]["object_start"] = "flat (amplitude 1, phase 0)"
    phase_f.write(study_copy, jobs)
    assert _run(study_copy) == 0
    assert "starting object" not in (study_copy / "compare" / "comparison.md").read_text()
