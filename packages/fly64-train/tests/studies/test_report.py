"""A tiny end-to-end study: Phase C and D CLIs, the runner with evaluation, `evaluate` and `report` commands."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from fly64_manifest import load_training_manifest, validate
from fly64_train.cli import main as cli_main
from fly64_train.studies.report import FILES

TINY_TRAIN = ["--max-epochs", "1", "--n-groups", "8", "--batch-size", "4", "--base-width", "4", "--deterministic",
              "--logger", "none"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def study(tiny_study_data, tmp_path_factory) -> Path:
    """Phase C and D of the shared tiny study, plus Phase E: every job trained and evaluated by the runner."""
    root = tmp_path_factory.mktemp("study")
    for phase in ("phase_c", "phase_d"):
        (root / phase).symlink_to(tiny_study_data / phase, target_is_directory=True)
    assert cli_main(["--phase-c-root", str(root / "phase_c"), "--phase-d-root", str(root / "phase_d"),
                     "--artifact-root", str(root / "phase_e"), *TINY_TRAIN]) == 0
    return root


def test_the_runner_records_schema_valid_metrics_and_figures_for_every_job(study):
    manifest = validate(study / "phase_e" / "training_manifest.json", "training_manifest")
    assert len(manifest["jobs"]) == 9
    for job in manifest["jobs"]:
        metrics = job["result"]["metrics"]
        assert metrics is not None, f"{job['job_dir']}: no metrics"
        for component in ("amplitude", "phase"):
            assert all(metrics[component][k] is not None for k in ("mae", "psnr", "ssim", "ms_ssim", "pearson"))
        job_dir = study / "phase_e" / job["job_dir"]
        assert (job_dir / "reconstruction.png").read_bytes()[:8] == PNG
        assert (job_dir / "reconstruction.npz").is_file()
        (artifact,) = job["result"]["artifacts"]
        assert artifact["path"] == "reconstruction.h5" and (job_dir / "reconstruction.h5").is_file()
        assert job["context"]["train_positions"] > 0
    # Sparse views leave gaps between probe footprints; the baseline scan covers nearly everything.
    typed = load_training_manifest(study / "phase_e")
    for dose in typed.doses:
        assert typed.job(dose, "sparse").metrics["coverage"] < typed.job(dose, "baseline").metrics["coverage"]


def test_report_fills_every_cell(study, tmp_path, capsys):
    out = tmp_path / "report"
    assert cli_main(["report", "--artifact-root", str(study / "phase_e"), "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    for name in FILES:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == PNG and (out / name).stat().st_size > 10_000
    table = [line for line in (out / "report.md").read_text().splitlines() if line.startswith("| ")]
    header, rows = table[0], table[1:]
    assert "amp SSIM" in header and "phase MS-SSIM" in header and "phase FRC50" in header and "PSNR" in header
    assert len(rows) == 9
    seen = set()
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == len(header.strip("|").split("|"))
        named = dict(zip([h.strip() for h in header.strip("|").split("|")], cells, strict=True))
        for name, cell in named.items():
            assert cell and cell not in {"not evaluated", "failed", "skipped"}, row
            if name not in ("f", "basis", "group overlap", "seeds"):  # the baseline has no spacing rule
                assert cell != "-", (name, row)
        assert "[" in named["amp SSIM"]  # the flat-object floor beside the score
        assert "[" in named["amp Pearson"] and "[" in named["phase Pearson"]
        # The information score beside them: a number, and how much the data could tell (nats per pattern).
        float(named["info"])
        assert float(named["truth gap nats/pattern"]) > 0
        seen.add((cells[0], cells[1].split()[0]))
    assert seen == {(d, v) for d in ("1000", "10000", "100000") for v in ("baseline", "dense", "sparse")}
    with (out / "metrics.csv").open() as fh:
        records = list(csv.DictReader(fh))
    assert len(records) == 9
    for rec in records:
        for comp in ("amplitude", "phase"):
            for name in ("mae", "psnr", "ssim", "ms_ssim", "pearson"):
                float(rec[f"{comp}_{name}"])  # present and numeric
    assert all(rec["floor_phase_ssim"] for rec in records)
    assert all(rec["information_info"] and float(rec["information_nll_gap_truth_per_pattern"]) > 0 for rec in records)
    assert all(rec["context_train_positions"] and rec["context_nn_overlap"] for rec in records)
    assert str(out / "report.md") in capsys.readouterr().out


def test_evaluate_command_rescores_and_updates_only_the_selected_jobs(study, tmp_path, capsys):
    artifact = tmp_path / "phase_e"
    shutil.copytree(study / "phase_e", artifact)
    # Root paths are recorded relative to the artifact root; keep them resolvable from the copy.
    for name in ("phase_c", "phase_d"):
        (tmp_path / name).symlink_to(study / name)
    path = artifact / "training_manifest.json"
    before = json.loads(path.read_text())
    target = next(j for j in before["jobs"] if j["view"] == "dense" and j["dose"] == 1000.0)
    target["result"]["metrics"] = None
    path.write_text(json.dumps(before))
    (artifact / target["job_dir"] / "reconstruction.png").unlink()

    assert cli_main(["evaluate", "--artifact-root", str(artifact), "--dose", "1000", "--view", "dense"]) == 0
    assert "1 job(s) evaluated" in capsys.readouterr().out
    after = validate(path, "training_manifest")
    original = {(j["dose"], j["view"]): j["result"]["metrics"] for j in
                validate(study / "phase_e" / "training_manifest.json", "training_manifest")["jobs"]}
    def scores(metrics):
        # Re-evaluation is deterministic in everything but the measured reconstruction wall time.
        timing = dict(metrics["reconstruction"])
        assert timing.pop("wall_s") > 0
        return {**metrics, "reconstruction": timing}

    for job in after["jobs"]:
        # The rescored job gets back exactly what the runner recorded; the others are untouched.
        assert scores(job["result"]["metrics"]) == scores(original[(job["dose"], job["view"])])
    assert (artifact / target["job_dir"] / "reconstruction.png").is_file()


def test_evaluate_refuses_a_bundle_that_is_not_the_recorded_one(study, tmp_path, capsys):
    artifact = tmp_path / "phase_e"
    shutil.copytree(study / "phase_e", artifact)
    for name in ("phase_c", "phase_d"):
        (tmp_path / name).symlink_to(study / name)
    bundle = artifact / "dose_1000" / "baseline" / "gs1" / "wts.h5.zip"
    bundle.write_bytes(bundle.read_bytes() + b"x")
    manifest_before = (artifact / "training_manifest.json").read_bytes()
    assert cli_main(["evaluate", "--artifact-root", str(artifact), "--dose", "1000", "--view", "baseline"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("fly64-train: error: ") and "wts.h5.zip" in err and "sha256" in err and "\n" not in err
    assert (artifact / "training_manifest.json").read_bytes() == manifest_before


@pytest.mark.parametrize("command", ["report", "evaluate"])
def test_a_missing_manifest_is_a_one_line_error(tmp_path, capsys, command):
    extra = ["--output", str(tmp_path / "out")] if command == "report" else []
    assert cli_main([command, "--artifact-root", str(tmp_path / "nowhere"), *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("fly64-train: error: ") and "training_manifest.json" in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_help_explains_both_commands(capsys):
    for command in ("evaluate", "report"):
        with pytest.raises(SystemExit) as exc:
            cli_main([command, "--help"])
        assert exc.value.code == 0
        text = capsys.readouterr().out
        assert "--artifact-root" in text and "example" in text


def test_report_of_a_partial_study_says_which_cells_are_missing_and_why(study, tmp_path):
    artifact = tmp_path / "phase_e"
    shutil.copytree(study / "phase_e", artifact)
    for name in ("phase_c", "phase_d"):
        (tmp_path / name).symlink_to(study / name)
    path = artifact / "training_manifest.json"
    doc = json.loads(path.read_text())
    failed = next(j for j in doc["jobs"] if j["view"] == "dense" and j["dose"] == 10000.0)
    failed["result"].update(status="failed", error="RuntimeError: out of memory", metrics=None)
    doc["jobs"] = [j for j in doc["jobs"] if not (j["view"] == "sparse" and j["dose"] == 1000.0)]
    doc["skipped_views"] = [{"dose": 1000.0, "view": "sparse", "gridsize": 2, "reason": "too few positions"}]
    doc["skipped_count"] = 1
    path.write_text(json.dumps(doc))
    out = tmp_path / "report"
    assert cli_main(["report", "--artifact-root", str(artifact), "--output", str(out)]) == 0
    text = (out / "report.md").read_text()
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:2]): line for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| dose")}
    assert len(rows) == 9
    assert "| failed |" in rows[("10000", "dense (gs2)")]
    assert "| skipped |" in rows[("1000", "sparse (gs2)")]
    assert "out of memory" in text and "too few positions" in text
    with (out / "metrics.csv").open() as fh:
        records = {(r["dose"], r["view"]): r for r in csv.DictReader(fh)}
    assert records[("10000.0", "dense")]["status"] == "failed" and records[("10000.0", "dense")]["phase_ssim"] == ""
