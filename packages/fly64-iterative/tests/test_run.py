"""``fly64-iterative run`` on tiny real data: beats the flat start, records, verifies, resumes, isolates faults."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from fly64_iterative.cli import main
from fly64_manifest import load_iterative_manifest, read_json, verify

FAST = ["--epochs", "3", "--batch-size", "64", "--device", "cpu"]


def _args(data, out, *extra, phase_d="phase_d"):
    return ["run", "--phase-c-root", str(data / "phase_c"), "--phase-d-root", str(data / phase_d),
            "--artifact-root", str(out), "--dose", "100000", *FAST, *extra]


@pytest.fixture(scope="module")
def lsqml_run(tiny_study_data, tmp_path_factory):
    """One LSQML run of the baseline test split (information score included), shared by the tests below."""
    out = tmp_path_factory.mktemp("phase_f")
    assert main(_args(tiny_study_data, out, "--view", "baseline")) == 0
    return out


def test_lsqml_scores_above_its_flat_start(lsqml_run):
    manifest = load_iterative_manifest(lsqml_run)
    (job,) = manifest.jobs
    assert (job.view, job.gridsize, job.status, job.engine, job.device) == ("baseline", 1, "success", "lsqml", "cpu")
    floor = job.metrics["floor"]
    # The flat object is what LSQML starts from; Phase E's scorer puts its scores in the floor.
    assert job.metric("phase", "ssim") > floor["phase"]["ssim"] + 0.1
    assert job.metric("amplitude", "pearson") > floor["amplitude"]["pearson"] + 0.5
    assert job.metrics["information"]["info"] > 0.5  # fitted on half A, scored on half B
    timing = job.metrics["reconstruction"]
    assert timing["n_patterns"] == job.n_patterns > 0 and timing["wall_s"] == job.wall_time_s > 0
    assert job.epochs == 3 and job.batch_size == 64 and job.noise_model == "poisson"
    assert job.engine_options["remove_object_probe_ambiguity"] is False


def test_manifest_verifies_and_the_product_reads(lsqml_run):
    assert verify(lsqml_run) == []
    job = load_iterative_manifest(lsqml_run).jobs[0]
    with h5py.File(job.reconstruction_path, "r") as h5:
        obj = h5["object"][()]
        assert obj.ndim == 3 and np.iscomplexobj(obj) and np.isfinite(obj).all()
        assert h5["probe_position_x_m"].shape == (job.n_patterns,)
    assert {a.recorded for a in job.artifacts} == {"reconstruction.h5", "reconstruction.png"}


def test_rerun_skips_finished_jobs(lsqml_run, tiny_study_data, capsys):
    before = read_json(lsqml_run / "iterative_manifest.json")["jobs"]
    h5 = lsqml_run / "dose_100000/baseline/gs1/reconstruction.h5"
    stamp = h5.stat().st_mtime_ns
    capsys.readouterr()
    assert main(_args(tiny_study_data, lsqml_run, "--view", "baseline")) == 0
    out = capsys.readouterr().out
    assert "done already" in out and "(0 run, 1 done already" in out
    assert h5.stat().st_mtime_ns == stamp
    assert read_json(lsqml_run / "iterative_manifest.json")["jobs"] == before


def test_a_failing_job_does_not_stop_the_others(tiny_study_data, tmp_path, capsys, monkeypatch):
    out = tmp_path / "phase_f"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # nothing (pty-chi's logs, timers, movies) may land outside the artifact root
    blocked = out / "dose_100000/dense"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the dense job's folder would go")
    status = main(_args(tiny_study_data, out, "--view", "dense", "--view", "sparse", "--no-information",
                        "--epochs", "1"))
    assert status == 1
    jobs = {job.view: job for job in load_iterative_manifest(out).jobs}
    assert jobs["dense"].status == "failed" and jobs["sparse"].status == "success"
    assert "\n" not in jobs["dense"].error and "dose_100000/dense" in jobs["dense"].error
    assert "FAILED" in capsys.readouterr().out
    assert verify(out) == []
    assert list(cwd.iterdir()) == []


def test_skipped_views_are_recorded_not_run(tiny_study_data, tmp_path, capsys):
    out = tmp_path / "phase_f"
    assert main(_args(tiny_study_data, out, "--view", "dense", "--view", "sparse", phase_d="phase_d_skipping")) == 0
    manifest = load_iterative_manifest(out)
    assert manifest.jobs == () and {s.view for s in manifest.skipped_views} == {"dense", "sparse"}
    assert "skipped: dose 100000 dense gs2: Phase D skipped this view" in capsys.readouterr().out


@pytest.mark.parametrize(("extra", "message"), [
    (["--dose", "5"], "--dose 5 is not in the study design"),
    (["--view", "diagonal"], "--view diagonal is not in the study design"),
    (["--epochs", "0"], "--epochs: must be at least 1"),
    (["--batch-size", "x"], "--batch-size: not a whole number"),
    (["--engine", "rpie"], "--engine: invalid choice"),
    (["--device", "tpu"], "--device: device must be auto, cpu, cuda, cuda:K, gpu or gpu:K, got 'tpu'"),
    (["--device", "CUDA"], "--device: device must be auto, cpu, cuda"),
    (["--device", "cuda:01"], "--device: device must be auto, cpu, cuda"),
    (["--engine", "epie", "--noise-model", "poisson"], "poisson needs --engine lsqml"),
    (["--seeds", "1", "1"], "--seeds 1 is given more than once"),
])
def test_usage_errors(tiny_study_data, tmp_path, capsys, extra, message):
    out = tmp_path / "phase_f"
    with pytest.raises(SystemExit) as exc:
        main(_args(tiny_study_data, out, *extra))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()  # nothing written


@pytest.mark.parametrize(("name", "canonical"), [("auto", "auto"), ("cpu", "cpu"), ("cuda", "cuda"), ("gpu", "cuda"),
                                                 ("cuda:1", "cuda:1"), ("gpu:1", "cuda:1")])
def test_device_takes_the_one_vocabulary_in_its_canonical_spelling(name, canonical):
    from fly64_iterative.cli import build_parser

    args = build_parser().parse_args(["run", "--phase-c-root", "c", "--phase-d-root", "d", "--artifact-root", "o",
                                      "--device", name])
    assert args.device == canonical


def test_a_gpu_torch_does_not_see_fails_the_job_naming_the_canonical_device(tiny_study_data, tmp_path):
    import torch

    from fly64_iterative.engine import resolve_device

    assert resolve_device("cpu") == "cpu"
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus:
        assert resolve_device("gpu:0") == resolve_device("cuda:0") == "cuda:0"
    out = tmp_path / "phase_f"
    # gpu:64, not cuda:64: the alias reaches the engine, and the record, as its canonical cuda spelling.
    assert main(_args(tiny_study_data, out, "--view", "sparse", "--no-information", "--device", "gpu:64")) == 1
    (job,) = load_iterative_manifest(out).jobs
    assert job.status == "failed" and job.device == "cuda:64"
    assert f"--device cuda:64: torch sees {gpus} CUDA device(s)" in job.error


def test_bad_input_is_one_line_and_writes_nothing(tiny_study_data, tmp_path, capsys):
    out = tmp_path / "phase_f"
    assert main(["run", "--phase-c-root", str(tmp_path / "nope"), "--phase-d-root", str(tmp_path / "nope"),
                 "--artifact-root", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fly64-iterative: error:") and "--phase-c-root" in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize(("engine", "options_class"), [("epie", "EPIEOptions"), ("dm", "DMOptions")])
def test_other_engines_run_through_their_own_option_classes(tiny_study_data, tmp_path, engine, options_class):
    out = tmp_path / "phase_f"
    assert main(_args(tiny_study_data, out, "--view", "sparse", "--engine", engine, "--epochs", "1",
                      "--no-information")) == 0
    (job,) = load_iterative_manifest(out).jobs
    assert job.status == "success" and job.engine == engine and job.noise_model == "gaussian"
    assert job.engine_options["options_class"] == options_class
    assert "information" not in job.metrics  # --no-information: one reconstruction only
    assert verify(out) == []


def test_seeds_give_one_replicate_per_seed_in_phase_e_layout(tiny_study_data, tmp_path):
    out = tmp_path / "phase_f"
    assert main(_args(tiny_study_data, out, "--view", "sparse", "--seeds", "0", "1", "--epochs", "1",
                      "--no-information")) == 0
    manifest = load_iterative_manifest(out)
    assert sorted(job.seed for job in manifest.jobs) == [0, 1]
    assert {job.job_dir.name for job in manifest.jobs} == {"seed_0", "seed_1"}
    assert {job.engine_options["random_seed"] for job in manifest.jobs} == {0, 1}
    assert manifest.job(100000, "sparse", seed=1).status == "success"
    assert verify(out) == []


@pytest.mark.parametrize("planted", ["dose_100000/baseline", "dose_100000/baseline/gs1/iterative.log"])
def test_a_planted_link_is_refused_and_nothing_outside_is_touched(tiny_study_data, tmp_path, capsys, planted):
    # A colleague's (or a stale) link inside the Phase F root: the job fails in one line, the link's
    # target keeps its bytes, and no folder of the job appears outside the root.
    out, outside = tmp_path / "phase_f", tmp_path / "outside"
    outside.mkdir()
    (outside / "thesis.txt").write_text("keep me")
    link = out / planted
    link.parent.mkdir(parents=True)
    link.symlink_to(outside / "thesis.txt" if planted.endswith(".log") else outside)
    status = main(_args(tiny_study_data, out, "--view", "baseline", "--no-information", "--epochs", "1"))
    assert status == 1
    (job,) = load_iterative_manifest(out).jobs
    assert job.status == "failed" and "\n" not in job.error and "link" in job.error
    assert sorted(p.name for p in outside.iterdir()) == ["thesis.txt"]
    assert (outside / "thesis.txt").read_text() == "keep me"
    assert "FAILED" in capsys.readouterr().out
