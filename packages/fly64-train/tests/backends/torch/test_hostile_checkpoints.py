"""Hostile job folders: tampered checkpoints never run code, a killed run loses at most one epoch.

Standing regression suite for issue #11 (cases 1 and 3): every case builds its own bad input.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from fly64_train.backends.torch.checkpoint import CheckpointError
from fly64_train.backends.torch.train import train_job
from fly64_train.training.model_config import ModelConfig


class _MakesMarker:
    """Unpickling this object calls ``open(marker, "w")``: code run from data."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _checkpoint_states(ckpt: dict) -> list[dict]:
    return [state for key, state in ckpt["callbacks"].items() if key.startswith("ModelCheckpoint")]


@pytest.fixture()
def finished_job(tmp_path, tiny_npz, make_config):
    cfg = make_config(tiny_npz, tmp_path / "job", max_epochs=1, logger="none")
    train_job(cfg)
    return cfg


def _point_best_at(cfg, evil_path) -> None:
    last = torch.load(f"{cfg.job_dir}/checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    for state in _checkpoint_states(last):
        state["best_model_path"] = str(evil_path)
    torch.save(last, f"{cfg.job_dir}/checkpoints/last.ckpt")


def test_best_checkpoint_outside_the_job_folder_is_refused_and_never_loaded(tmp_path, finished_job):
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.ckpt"
    torch.save(_MakesMarker(marker), evil)
    _point_best_at(finished_job, evil)
    with pytest.raises(CheckpointError, match="outside") as err:
        train_job(finished_job)
    assert not marker.exists()
    assert "last.ckpt" in str(err.value) and "\n" not in str(err.value)
    assert evil.exists()  # Lightning's "remove the old best" never reached it either


def test_code_in_a_best_checkpoint_inside_the_job_folder_never_runs(tmp_path, finished_job):
    marker = tmp_path / "marker"
    evil = tmp_path / "job" / "checkpoints" / "best-epoch=999.ckpt"
    torch.save(_MakesMarker(marker), evil)
    _point_best_at(finished_job, evil)
    with pytest.raises(CheckpointError, match="best-epoch=999") as err:
        train_job(finished_job)
    assert not marker.exists()
    assert "\n" not in str(err.value)


def test_code_in_last_checkpoint_never_runs(tmp_path, finished_job):
    marker = tmp_path / "marker"
    torch.save(_MakesMarker(marker), tmp_path / "job" / "checkpoints" / "last.ckpt")
    with pytest.raises(CheckpointError, match="last.ckpt") as err:
        train_job(finished_job)
    assert not marker.exists()
    assert "\n" not in str(err.value)


KILLED_RUN = textwrap.dedent("""
    import json, os, signal, sys
    import lightning as L
    import torch
    from fly64_train.backends.torch.train import train_job
    from fly64_train.training.config import TrainConfig

    torch.set_num_threads(1)

    class KillAtThirdEpoch(L.Callback):
        # SIGKILL, not an exception: nothing gets a chance to clean up, as with a real crash.
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 2:
                os.kill(os.getpid(), signal.SIGKILL)

    train_job(TrainConfig.from_dict(json.loads(sys.argv[1])), callbacks=[KillAtThirdEpoch()])
""")


def test_last_checkpoint_is_written_every_epoch_even_without_improvement(tmp_path, tiny_npz, make_config,
                                                                          losses_of):
    # A learning rate too small to change a float32 weight and no BatchNorm statistics: the monitored
    # loss is the same every epoch, so only epoch 0 ever "improves".
    model = ModelConfig(base_width=4, depth=3, convs_per_level=1, batch_norm=False)
    cfg = make_config(tiny_npz, tmp_path / "job", max_epochs=4, lr=1e-30, model=model)
    config = {**cfg.to_dict(), "model": model.to_dict()}
    proc = subprocess.run([sys.executable, "-c", KILLED_RUN, json.dumps(config)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == -9, proc.stderr[-2000:]
    saved = torch.load(tmp_path / "job" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["epoch"] == 1  # the last finished epoch, not the last improving one

    result = train_job(cfg)
    assert result.resumed_from == "checkpoints/last.ckpt"
    assert result.epochs_completed == 4
    assert [e for e, _ in losses_of(tmp_path / "job", result.log_path)] == ["2", "3"]
