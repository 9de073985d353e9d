"""Hostile command-line values: each is refused at parse time with exit 2 and one line naming the flag.

A standing suite (issue #20, section 6). Every case points the command at input that
does not exist and at an output folder that must stay unmade: a value refused late
would fail on the missing file instead (exit 1) or create the folder.
"""

from __future__ import annotations

import typing

import pytest

from fly64_train.cli import main as train_main
from fly64_train.training.torch_options import PRECISIONS, STRATEGIES


def _refused(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        train_main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


TRAIN_ONE_CASES = {
    "--devices 0": (["--devices", "0"], "--devices"),
    "--devices abc": (["--devices", "abc"], "--devices"),
    "--precision garbage": (["--precision", "garbage"], "--precision"),
    "--strategy garbage": (["--strategy", "garbage"], "--strategy"),
    "--accelerator tpu-ish": (["--accelerator", "quantum"], "--accelerator"),
    "--max-time superscript digit": (["--max-time", "00:00:0\u00b2:00"], "--max-time"),
    "--max-time Arabic-Indic digit": (["--max-time", "00:00:\u0663\u0660:00"], "--max-time"),
    "--max-time zero": (["--max-time", "00:00:00:00"], "--max-time"),
    "--max-time a century": (["--max-time", "36500:00:00:00"], "--max-time"),
    "--seed -1": (["--seed", "-1"], "--seed"),
    "--seed 2**32": (["--seed", "4294967296"], "--seed"),
    "--grouping-seed -1": (["--grouping-seed", "-1"], "--grouping-seed"),
    "--n-groups 10**15": (["--n-groups", str(10**15)], "--n-groups"),
    "--n-groups a million digits": (["--n-groups", "9" * 100_000], "--n-groups"),
}


@pytest.mark.parametrize("case", TRAIN_ONE_CASES, ids=list(TRAIN_ONE_CASES))
def test_train_one_refuses_a_bad_value_before_reading_or_writing(capsys, tmp_path, case):
    flags, named = TRAIN_ONE_CASES[case]
    job = tmp_path / "job"
    err = _refused(capsys, ["train-one", "--train", str(tmp_path / "missing.npz"), "--job-dir", str(job), *flags])
    assert f"argument {named}" in err, err
    assert not job.exists()


def test_a_seed_out_of_range_says_the_range(capsys, tmp_path):
    err = _refused(capsys, ["train-one", "--train", "x.npz", "--job-dir", str(tmp_path / "j"), "--seed", "-1"])
    assert "[0, 4294967295]" in err


def test_train_one_refuses_a_job_dir_that_is_a_file(capsys, tmp_path):
    job = tmp_path / "job"
    job.write_text("precious\n")
    err = _refused(capsys, ["train-one", "--train", str(tmp_path / "missing.npz"), "--job-dir", str(job)])
    assert "--job-dir" in err and "not a folder" in err
    assert job.read_text() == "precious\n"


@pytest.mark.parametrize("accelerator", ["gpu", "cuda"])
def test_a_gpu_accelerator_on_a_node_without_one_is_a_usage_error(capsys, tmp_path, monkeypatch, accelerator):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # this node shows no GPU, whatever the machine has
    job = tmp_path / "job"
    err = _refused(capsys, ["train-one", "--train", str(tmp_path / "missing.npz"), "--job-dir", str(job),
                            "--accelerator", accelerator])
    assert f"--accelerator {accelerator}" in err and "no GPU" in err
    assert not job.exists()
    artifact = tmp_path / "e"
    err = _refused(capsys, ["run", "--phase-c-root", str(tmp_path / "c"), "--phase-d-root", str(tmp_path / "d"),
                            "--artifact-root", str(artifact), "--accelerator", accelerator, "--dry-run"])
    assert f"--accelerator {accelerator}" in err
    assert not artifact.exists()


RUN_CASES = {
    "--precision garbage --dry-run": (["--precision", "garbage", "--dry-run"], "argument --precision"),
    "--strategy garbage --dry-run": (["--strategy", "garbage", "--dry-run"], "argument --strategy"),
    "--seeds 0 2**32": (["--seeds", "0", "4294967296"], "argument --seeds"),
    "--seeds -1": (["--seeds", "-1"], "argument --seeds"),
    "--grouping-seed -1": (["--grouping-seed", "-1"], "argument --grouping-seed"),
    "--n-groups 10**15": (["--n-groups", str(10**15)], "argument --n-groups"),
    "--max-time zero": (["--max-time", "00:00:00:00"], "argument --max-time"),
}


@pytest.mark.parametrize("case", RUN_CASES, ids=list(RUN_CASES))
def test_run_refuses_a_bad_value_before_reading_or_writing(capsys, tmp_path, case):
    flags, named = RUN_CASES[case]
    artifact = tmp_path / "e"
    err = _refused(capsys, ["run", "--phase-c-root", str(tmp_path / "c"), "--phase-d-root", str(tmp_path / "d"),
                            "--artifact-root", str(artifact), *flags])
    assert named in err, err
    assert not artifact.exists()


def test_a_dose_outside_the_design_is_shown_exactly_as_typed(capsys, tmp_path):
    err = _refused(capsys, ["run", "--phase-c-root", str(tmp_path / "c"), "--phase-d-root", str(tmp_path / "d"),
                            "--artifact-root", str(tmp_path / "e"), "--dose", "1000.0000000000001"])
    assert "--dose 1000.0000000000001 is not in the study design" in err


@pytest.mark.parametrize("flags", [["--input-fraction", "0.3"], ["--depth", "5"]], ids=["input-fraction", "depth"])
def test_model_flags_that_cannot_fit_the_data_are_refused_by_a_dry_run(capsys, tiny_study_data, tmp_path, flags):
    # N = 32: a 0.3 crop is 10 pixels (not divisible by 2**3); depth 5 halves 16 pixels five times.
    artifact = tmp_path / "e"
    err = _refused(capsys, ["run", "--phase-c-root", str(tiny_study_data / "phase_c"),
                            "--phase-d-root", str(tiny_study_data / "phase_d"), "--artifact-root", str(artifact),
                            "--dose", "1000", "--view", "baseline", "--dry-run", *flags])
    assert flags[0] in err and "N = 32" in err, err
    assert not artifact.exists()


def test_the_offered_precisions_and_strategies_are_lightnings_names():
    from lightning.fabric.connector import _PRECISION_INPUT_STR
    from lightning.pytorch.strategies import StrategyRegistry

    assert set(PRECISIONS) <= set(typing.get_args(_PRECISION_INPUT_STR))
    assert set(STRATEGIES) - {"auto"} <= set(StrategyRegistry.available_strategies())


def test_a_resume_with_another_base_width_is_one_line_not_a_state_dict_traceback(tiny_npz, tmp_path, capsys):
    job = tmp_path / "job"
    common = ["train-one", "--train", str(tiny_npz), "--job-dir", str(job), "--n-groups", "16", "--batch-size", "8",
              "--max-epochs", "1", "--no-progress", "--accelerator", "cpu", "--logger", "none"]
    assert train_main([*common, "--base-width", "4"]) == 0
    capsys.readouterr()
    err = _refused(capsys, [*common, "--base-width", "8"])
    assert "base_width" in err and "--no-resume" in err and "state_dict" not in err


# Properties of the parse-time types: whatever the text, a type returns a value in range or raises
# argparse's ArgumentTypeError (a one-line usage error), never another exception.
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fly64_train.training import option  # noqa: E402
from fly64_train.training.config import MAX_N_GROUPS, _n_groups  # noqa: E402

_TEXT = st.one_of(st.text(max_size=30), st.integers(-(2**70), 2**70).map(str),
                  st.from_regex(r"[0-9\u00b2\u0663]{1,3}(:[0-9\u00b2\u0663]{1,3}){3}", fullmatch=True))


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_every_parse_time_type_returns_a_checked_value_or_a_usage_error(text):
    import argparse

    for parse, accept in ((option.seed, lambda v: 0 <= v <= option.MAX_SEED),
                          (_n_groups, lambda v: 1 <= v <= MAX_N_GROUPS),
                          (option.devices, lambda v: v == "auto" or 1 <= v <= option.MAX_DEVICES),
                          (option.time_or_off, lambda v: v is None or 0 < option.max_time_seconds(v)
                           <= option.MAX_TIME_LIMIT_S)):
        try:
            value = parse(text)
        except argparse.ArgumentTypeError as exc:
            assert "\n" not in str(exc)
            continue
        assert accept(value), (parse.__name__, text, value)
        if isinstance(value, int):
            assert text.isascii()  # "²" or "٣" never passes for a digit


_FLAGS = ["--seed", "--grouping-seed", "--n-groups", "--devices", "--max-time", "--batch-size", "--max-epochs",
          "--neighbor-count", "--lr", "--num-workers", "--precision", "--strategy", "--accelerator"]


@settings(max_examples=200, deadline=None)
@given(flag=st.sampled_from(_FLAGS), text=_TEXT)
def test_what_the_command_line_accepts_the_config_checker_accepts(flag, text):
    # One checker: a value a flag's type lets through must pass TrainConfig.check(), the check a
    # config read back from a file goes through (else a bundle could record what cannot be reloaded).
    from fly64_train.cli import build_parser
    from fly64_train.cli_options import train_config_from_args

    try:
        args = build_parser().parse_args(["train-one", "--train", "t.npz", "--job-dir", "j", flag, text])
    except SystemExit:
        return
    train_config_from_args(args).check()
