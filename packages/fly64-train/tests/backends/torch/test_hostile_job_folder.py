"""Hostile job folders (issue 20, sections 1 and 2): links at checkpoints/ or logs/, and resumes of other settings.

Each test builds its own bad folder. A link below the job folder is refused
before anything is written through it; a checkpoint trained with other data,
gridsize or optimiser settings is never resumed silently.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fly64_manifest import UnsafePathError
from fly64_train.backends.torch.train import train_job
from fly64_train.cli import main as cli_main
from fly64_train.training.job_folder import ResumeMismatch

from ...conftest import write_npz


@pytest.fixture()
def trained(tmp_path, tiny_npz, make_config):
    """A job folder with a one-epoch checkpoint of gridsize 1, lr 1e-3."""
    cfg = make_config(tiny_npz, tmp_path / "job", max_epochs=1, logger="none")
    train_job(cfg)
    return cfg


def _other_data(tmp_path, tiny_sim):
    rows = np.flatnonzero(tiny_sim["y"] > np.median(tiny_sim["y"]) - 1)
    return write_npz(tmp_path / "other_train.npz", tiny_sim, rows)


@pytest.mark.parametrize("change", ["train_path", "gridsize", "lr"])
def test_a_resume_of_other_settings_is_refused(tmp_path, tiny_sim, trained, make_config, change):
    last = Path(trained.job_dir) / "checkpoints" / "last.ckpt"
    stamp = last.read_bytes()
    settings = {"train_path": {"train_path": str(_other_data(tmp_path, tiny_sim))}, "gridsize": {"gridsize": 2},
                "lr": {"lr": 0.5}}[change]
    changed = {"train_path": trained.train_path, "job_dir": trained.job_dir, **settings}
    with pytest.raises(ResumeMismatch) as info:
        train_job(make_config(**changed, max_epochs=2, logger="none"))
    message = str(info.value)
    assert "this job folder holds a checkpoint of other settings" in message and "use --no-resume" in message
    assert "\n" not in message
    assert last.read_bytes() == stamp  # the checkpoint was not touched
    # --no-resume starts that job from scratch.
    assert train_job(make_config(**changed, max_epochs=1, logger="none", resume=False)).resumed_from is None


def test_a_resume_with_only_more_epochs_continues(trained, make_config):
    cfg = make_config(trained.train_path, trained.job_dir, max_epochs=2, logger="none", max_time="00:00:30:00")
    assert train_job(cfg).resumed_from == "checkpoints/last.ckpt"


def test_a_checkpoint_without_a_settings_record_is_not_resumed(trained, make_config):
    (Path(trained.job_dir) / "checkpoints" / "resume_settings.json").unlink()
    with pytest.raises(ResumeMismatch, match="use --no-resume"):
        train_job(make_config(trained.train_path, trained.job_dir, max_epochs=2, logger="none"))


def test_train_one_exits_2_on_a_resume_of_other_settings(trained, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["train-one", "--train", trained.train_path, "--job-dir", trained.job_dir,
                  "--lr", "0.5", "--max-epochs", "2", "--accelerator", "cpu"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert "this job folder holds a checkpoint of other settings" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("sub", ["checkpoints", "logs"])
def test_a_linked_checkpoints_or_logs_folder_is_refused(tmp_path, tiny_npz, make_config, outside, sub):
    job = tmp_path / "job"
    job.mkdir()
    (job / sub).symlink_to(outside)
    with pytest.raises(UnsafePathError) as info:
        train_job(make_config(tiny_npz, job, max_epochs=1))
    assert str(job / sub) in str(info.value) and "symbolic link" in str(info.value)
    assert sorted(p.name for p in outside.iterdir()) == ["thesis.txt"]


def test_a_checkpoint_name_linked_to_an_outside_folder_is_refused(tmp_path, tiny_npz, make_config, outside):
    job = tmp_path / "job"
    (job / "checkpoints").mkdir(parents=True)
    (job / "checkpoints" / "last.ckpt").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="last.ckpt"):
        train_job(make_config(tiny_npz, job, max_epochs=1, resume=False))
    assert sorted(p.name for p in outside.iterdir()) == ["thesis.txt"]
