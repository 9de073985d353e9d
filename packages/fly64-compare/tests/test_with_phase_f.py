"""Phase G on manifests written by the real Phase F (fly64-iterative, pty-chi LSQML) beside a real Phase E."""

from __future__ import annotations

import csv

import pytest

from fly64_compare.cli import main
from fly64_manifest import load_iterative_manifest, load_training_manifest, verify


@pytest.mark.slow  # a real pty-chi reconstruction on the shared cores: ~10-30 s
def test_a_real_phase_f_cell_is_compared_and_the_cell_it_did_not_run_says_so(study_copy):
    from fly64_iterative.cli import main as iterative_main

    assert iterative_main(["run", "--phase-c-root", str(study_copy / "phase_c"), "--phase-d-root",
                           str(study_copy / "phase_d"), "--artifact-root", str(study_copy / "phase_f"),
                           "--view", "baseline", "--dose", "1000", "--epochs", "1", "--device", "cpu",
                           "--no-information"]) == 0
    assert verify(study_copy / "phase_f") == []
    assert main(["run", "--phase-e-root", str(study_copy / "phase_e"), "--phase-f-root",
                 str(study_copy / "phase_f"), "--output", str(study_copy / "compare")]) == 0
    pinn = load_training_manifest(study_copy / "phase_e").job(1000, "baseline")
    iterative = load_iterative_manifest(study_copy / "phase_f").job(1000, "baseline")
    with (study_copy / "compare" / "comparison.csv").open() as fh:
        rows = {(r["dose"], r["metric"]): r for r in csv.DictReader(fh)}
    row = rows[("1000.0", "phase.ssim")]
    assert float(row["iterative_mean"]) == pytest.approx(iterative.metric("phase", "ssim"))
    assert float(row["pinn_mean"]) == pytest.approx(pinn.metric("phase", "ssim"))
    assert float(row["iterative_s_per_1000"]) == pytest.approx(iterative.seconds_per_1000_patterns)
    assert row["iterative_device"].startswith("cpu")
    assert rows[("10000.0", "phase.ssim")]["iterative_state"] == "not run"
    md = (study_copy / "compare" / "comparison.md").read_text()
    assert "- dose 10000 baseline, iterative: no job recorded" in md
