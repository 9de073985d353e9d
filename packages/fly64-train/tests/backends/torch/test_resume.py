"""A run killed after its first epoch continues from checkpoints/last.ckpt."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import pytest
import torch

from fly64_train.backends.torch.train import train_job

KILLED_RUN = textwrap.dedent("""
    import json, os, signal, sys
    import lightning as L
    import torch
    from fly64_train.backends.torch.train import train_job
    from fly64_train.training.config import TrainConfig

    torch.set_num_threads(1)

    class KillAtSecondEpoch(L.Callback):
        # SIGKILL, not an exception: nothing gets a chance to clean up, as with a real crash.
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 1:
                os.kill(os.getpid(), signal.SIGKILL)

    train_job(TrainConfig.from_dict(json.loads(sys.argv[1])), callbacks=[KillAtSecondEpoch()])
""")


def test_killed_run_resumes_from_last_checkpoint(tmp_path, tiny_npz, make_config, losses_of):
    job_dir = tmp_path / "job"
    cfg = make_config(tiny_npz, job_dir, max_epochs=3)
    proc = subprocess.run([sys.executable, "-c", KILLED_RUN, json.dumps(cfg.to_dict())],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    last = job_dir / "checkpoints" / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert saved["epoch"] == 0
    steps_per_epoch = saved["global_step"]
    assert steps_per_epoch > 0

    result = train_job(cfg)
    assert result.resumed_from == "checkpoints/last.ckpt"
    assert result.epochs_completed == 3
    assert result.global_step == 3 * steps_per_epoch
    # The restarted run logged epochs 1 and 2 only: it did not start from scratch.
    assert [e for e, _ in losses_of(job_dir, result.log_path)] == ["1", "2"]
    assert result.log_path != "logs/version_0/metrics.csv"
    assert math.isfinite(result.final_loss)


def test_no_resume_starts_from_scratch(tmp_path, tiny_npz, make_config):
    job_dir = tmp_path / "job"
    train_job(make_config(tiny_npz, job_dir, max_epochs=1))
    again = train_job(make_config(tiny_npz, job_dir, max_epochs=1, resume=False))
    assert again.resumed_from is None and again.epochs_completed == 1


def _scheduler_state(job_dir):
    saved = torch.load(job_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    state = saved["lr_schedulers"][0]
    return state["last_epoch"], state["best"], state["num_bad_epochs"], state["_last_lr"]


def test_a_resumed_run_takes_every_plateau_step_an_uninterrupted_one_takes(tmp_path, tiny_npz, make_config):
    """last.ckpt is written before its epoch's ReduceLROnPlateau step; the resumed run replays that step."""
    settings = dict(accelerator="cpu", plateau_patience=0, plateau_factor=0.5, lr=0.05)
    train_job(make_config(tiny_npz, tmp_path / "straight", max_epochs=4, **settings))
    train_job(make_config(tiny_npz, tmp_path / "resumed", max_epochs=2, **settings))
    result = train_job(make_config(tiny_npz, tmp_path / "resumed", max_epochs=4, **settings))
    assert result.resumed_from == "checkpoints/last.ckpt"
    (steps, _, _, rate), (resumed_steps, _, _, resumed_rate) = (_scheduler_state(tmp_path / "straight"),
                                                                _scheduler_state(tmp_path / "resumed"))
    assert steps == 3 and rate[0] < 0.05  # the plateau rule has cut the rate by then
    # The same number of plateau decisions and the same rate (the losses themselves differ slightly:
    # a resumed run draws other photon splits).
    assert (resumed_steps, resumed_rate) == (steps, rate)


def _flatten_resume_settings(job_dir, **changes):
    """Rewrite ``resume_settings.json`` as a job written before the torch options were nested recorded it:
    ``precision`` (the one torch option a resume must keep) as a top-level setting, no ``torch`` object."""
    path = job_dir / "checkpoints" / "resume_settings.json"
    record = json.loads(path.read_text())
    torch_settings = record["settings"].pop("torch", {})  # a resume leaves the record as it was
    assert set(torch_settings) <= {"precision"}  # where, how many and how: free to change on a resume
    record["settings"].update(torch_settings, **changes)
    path.write_text(json.dumps(record))


def test_a_job_folder_written_before_the_nesting_resumes(tmp_path, tiny_npz, make_config):
    from fly64_train.training.job_folder import ResumeMismatch, check_resume

    job_dir = tmp_path / "job"
    train_job(make_config(tiny_npz, job_dir, max_epochs=1, accelerator="cpu"))
    _flatten_resume_settings(job_dir)
    # A resume may move the job (accelerator, loader workers), as before the layout change.
    resumed = train_job(make_config(tiny_npz, job_dir, max_epochs=2, accelerator="auto", num_workers=1))
    assert resumed.resumed_from == "checkpoints/last.ckpt" and resumed.epochs_completed == 2
    # An old record still refuses a change of what is learned: its flat precision is compared with torch.precision.
    _flatten_resume_settings(job_dir, precision="bf16-mixed")
    with pytest.raises(ResumeMismatch, match=r"torch\.precision 'bf16-mixed' -> '32-true'.*use --no-resume"):
        check_resume(make_config(tiny_npz, job_dir, max_epochs=3))
