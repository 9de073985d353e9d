"""``fly64-train`` through the real console script: commands, the default command, usage errors, train-one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

import pytest

from fly64_train.cli import COMMANDS, build_parser
from fly64_train.cli_options import declared_options, flag_names
from fly64_train.training.config import TrainConfig
from fly64_train.training.model_config import ModelConfig
from fly64_train.training.option import NESTED, Internal, Option, option
from fly64_train.training.torch_options import TorchOptions


def _script() -> str:
    beside = Path(sys.executable).parent / "fly64-train"
    exe = str(beside) if beside.exists() else shutil.which("fly64-train")
    if exe is None:
        pytest.fail("console script fly64-train is not installed (run `make setup`)")
    return exe


def fly64_train(*args: str) -> subprocess.CompletedProcess:
    # The sources under test first on the path, as the tests' own interpreter has them.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run([_script(), *args], capture_output=True, text=True, check=False, env=env, timeout=300)


def _usage_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("fly64-train"), err
    return err


def test_help_lists_every_command_and_the_default():
    proc = fly64_train("--help")
    assert proc.returncode == 0
    for command in COMMANDS:
        assert command in proc.stdout
    assert "Without a command" in proc.stdout and "means `fly64-train run" in proc.stdout
    for command in COMMANDS:
        sub = fly64_train(command, "--help")
        assert sub.returncode == 0 and f"fly64-train {command}" in sub.stdout


@pytest.mark.parametrize("argv", [["trian-one"], ["--bogus-flag", "1"], [],
                                  ["train-one", "--train", "t.npz", "--job-dir", "j", "--epoch", "3"]])
def test_an_unknown_command_or_flag_is_a_one_line_usage_error_listing_the_commands(argv):
    err = _usage_error(fly64_train(*argv))
    assert "commands: run, train-one, evaluate, report" in err
    if argv[:1] == ["trian-one"]:
        assert "unknown command 'trian-one'" in err
    if "--epoch" in argv:
        assert "unrecognized arguments: --epoch 3" in err  # no abbreviation of --epochs


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0"])
def test_a_dose_that_is_not_a_finite_positive_number_is_a_usage_error(value):
    for command in (["run", "--phase-c-root", "c", "--phase-d-root", "d", "--artifact-root", "e"],
                    ["evaluate", "--artifact-root", "e"]):
        err = _usage_error(fly64_train(*command, "--dose", value))
        assert "--dose" in err and value in err


def test_an_unknown_backend_is_a_usage_error():
    err = _usage_error(fly64_train("train-one", "--train", "t.npz", "--job-dir", "j", "--backend", "jax"))
    assert "--backend" in err and "jax" in err and "torch" in err


def test_without_a_command_it_runs_the_study_and_repeated_filters_accumulate(tiny_study_data, tmp_path):
    artifact = tmp_path / "e"
    proc = fly64_train("--phase-c-root", str(tiny_study_data / "phase_c"), "--phase-d-root",
                       str(tiny_study_data / "phase_d"), "--artifact-root", str(artifact), "--dry-run",
                       "--dose", "1000", "--dose", "100000", "--view", "baseline", "--view", "sparse")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((artifact / "training_manifest.json").read_text())
    assert {(j["dose"], j["view"]) for j in manifest["jobs"]} == {
        (d, v) for d in (1000.0, 100000.0) for v in ("baseline", "sparse")}
    assert manifest["filters"]["dose"] == [1000.0, 100000.0]
    assert manifest["backend"] == "torch" and {j["backend"] for j in manifest["jobs"]} == {"torch"}
    from fly64_manifest import load_training_manifest

    assert {job.backend for job in load_training_manifest(artifact).jobs} == {"torch"}


def test_train_one_trains_a_tiny_job_with_the_shared_flag_spellings(tiny_npz, tmp_path):
    job_dir = tmp_path / "job"
    proc = fly64_train("train-one", "--train", str(tiny_npz), "--job-dir", str(job_dir), "--epochs", "1",
                       "--n_groups", "8", "--batch-size", "4", "--base-width", "4", "--deterministic",
                       "--logger", "none", "--no-progress", "--accelerator", "cpu")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "completed" and result["epochs_completed"] == 1
    assert (job_dir / result["bundle_path"]).is_file()
    bundle = json.loads(__import__("zipfile").ZipFile(job_dir / result["bundle_path"]).read("manifest.json"))
    config = bundle["config"]
    # K and the grouping seed were not given: the study design's values reached the job.
    from fly64_data.design import get_study_design

    design = get_study_design()
    assert config["neighbor_count"] == design.neighbor_count
    assert config["grouping_seed"] == design.rng_seeds["grouping"]
    assert config["max_epochs"] == 1 and config["n_groups"] == 8 and config["model"]["base_width"] == 4
    # --accelerator keeps its name on the command line and lands in the torch options.
    assert config["torch"]["accelerator"] == "cpu" and "accelerator" not in config


def test_evaluate_and_report_refuse_a_root_without_a_manifest(tmp_path):
    for command in (["evaluate", "--artifact-root", str(tmp_path)],
                    ["report", "--artifact-root", str(tmp_path), "--output", str(tmp_path / "r")]):
        proc = fly64_train(*command)
        assert proc.returncode == 1 and "training_manifest.json" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_evaluate_refuses_an_unknown_device_before_reading_anything(tmp_path):
    proc = fly64_train("evaluate", "--artifact-root", str(tmp_path), "--device", "tpu")
    assert proc.returncode == 2 and "device must be auto, cpu, cuda, cuda:K, gpu or gpu:K" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# --------------------------------------------------------------------------- options from the config


def _option_strings(command: str) -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {s for action in sub._actions for s in action.option_strings}


def test_every_user_option_of_the_configs_has_a_flag_in_run_and_train_one():
    run, one = _option_strings("run"), _option_strings("train-one")
    declared = dict(declared_options())
    for cls, prefix in ((TrainConfig, ""), (ModelConfig, "model."), (TorchOptions, "torch.")):
        for f in fields(cls):
            spec = f.metadata.get("option")
            assert isinstance(spec, (Option, Internal)) or spec == NESTED, f"{cls.__name__}.{f.name}"
            if isinstance(spec, Option):
                names = flag_names(prefix + f.name, spec)
                if spec.kind == "false":
                    names = [n.replace("--", "--no-", 1) for n in names]
                assert declared[prefix + f.name] is spec
                assert set(names) <= one, f"train-one lacks {names}"
                assert spec.scope == "job" or set(names) <= run, f"run lacks {names}"
    # The spellings the issue names, and the old train-one spelling as an alias.
    named = {"--max-epochs", "--max_epochs", "--epochs", "--backend", "--logger", "--count-split", "--n-images"}
    assert named <= one and named <= run


def test_the_torch_flags_keep_their_names_and_land_in_the_torch_options():
    parser = build_parser()
    args = parser.parse_args(["train-one", "--train", "t.npz", "--job-dir", "j", "--accelerator", "gpu",
                              "--devices", "2", "--strategy", "ddp", "--precision", "bf16-mixed",
                              "--num-workers", "3", "--deterministic"])
    from fly64_train.cli_options import train_config_from_args

    cfg = train_config_from_args(args)
    assert cfg.torch == TorchOptions(accelerator="gpu", devices=2, strategy="ddp", precision="bf16-mixed",
                                     num_workers=3)
    assert cfg.torch.device_kind == "cuda" and cfg.deterministic is True
    # Not given: every torch option at its default.
    assert train_config_from_args(parser.parse_args(["train-one", "--train", "t.npz", "--job-dir", "j"])).torch \
        == TorchOptions()


def test_the_learning_rate_schedule_flags_land_in_the_config_and_bad_factors_are_usage_errors(capsys):
    from fly64_train.cli_options import train_config_from_args

    parser = build_parser()
    base = ["train-one", "--train", "t.npz", "--job-dir", "j"]
    cfg = train_config_from_args(parser.parse_args([*base, "--plateau-factor", "0.3", "--plateau-patience", "60"]))
    assert (cfg.plateau_factor, cfg.plateau_patience) == (0.3, 60)
    default = train_config_from_args(parser.parse_args(base))
    assert (default.plateau_factor, default.plateau_patience) == (0.5, 2)
    for bad in (["--plateau-factor", "1"], ["--plateau-factor", "0"], ["--plateau-patience", "-1"]):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([*base, *bad])
        assert exit_info.value.code == 2
        assert bad[0] in capsys.readouterr().err


def test_run_help_groups_and_describes_the_torch_flags(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    out = capsys.readouterr().out
    torch_group = out[out.index("torch backend:"):]
    torch_group = torch_group[:torch_group.index("\n\n", torch_group.index("--accelerator"))]
    for flag in ("--accelerator", "--devices", "--strategy", "--precision", "--num-workers"):
        assert flag in torch_group, flag
    assert "tensorflow backend ignores these" in " ".join(torch_group.split())
    assert "Lightning precision" in torch_group


def test_a_field_without_a_declaration_cannot_be_forgotten():
    @dataclass
    class Extended:
        kept: int = field(default=1, metadata=option("declared"))
        forgotten: int = 2

    with pytest.raises(TypeError, match="Extended.forgotten declares no command-line option"):
        list(declared_options(Extended))




@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_offers_verbose(command, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    assert "--verbose" in capsys.readouterr().out


def test_verbose_lets_the_frameworks_log_lines_through_for_what_the_command_imports(tmp_path, monkeypatch):
    from fly64_train.cli import main
    from fly64_train.core.seam import FRAMEWORK_LOGS_ENV

    monkeypatch.delenv(FRAMEWORK_LOGS_ENV, raising=False)
    args = ["report", "--artifact-root", str(tmp_path / "none"), "--output", str(tmp_path / "out")]
    for verbose in ([], ["--verbose"]):
        try:
            main([*args, *verbose])  # no manifest there: the command fails after parsing, which is enough
        except SystemExit:
            pass
        assert os.environ.get(FRAMEWORK_LOGS_ENV) == ("1" if verbose else None)
