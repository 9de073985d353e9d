"""Real Lightning training on a tiny dataset: checkpoints, logs, bundle, determinism."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from fly64_train.backends.torch.bundle import load_bundle, read_manifest
from fly64_train.backends.torch.lightning_module import PtychoPINNModule
from fly64_train.backends.torch.train import train_job


@pytest.fixture(scope="module", params=[1, 2], ids=["gs1", "gs2"])
def trained(request, tmp_path_factory, tiny_npz, make_config):
    job_dir = tmp_path_factory.mktemp(f"job_gs{request.param}")
    result = train_job(make_config(tiny_npz, job_dir, request.param))
    return request.param, job_dir, result


def test_training_writes_checkpoints_log_and_bundle(trained, losses_of):
    gridsize, job_dir, result = trained
    assert result.status == "completed" and result.epochs_completed == 2
    assert result.checkpoint_path == "checkpoints/last.ckpt"
    assert (job_dir / "checkpoints" / "last.ckpt").is_file()
    assert result.best_checkpoint_path.startswith("checkpoints/best-")
    assert (job_dir / result.best_checkpoint_path).is_file()
    losses = losses_of(job_dir, result.log_path)
    assert [epoch for epoch, _ in losses] == ["0", "1"]
    assert np.isfinite(result.final_loss)
    bundle = job_dir / result.bundle_path
    assert result.bundle_sha256 == hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert result.bundle_size_bytes == bundle.stat().st_size
    manifest = read_manifest(bundle)
    assert manifest.gridsize == gridsize and manifest.patch_size == 32
    assert manifest.intensity_scale == pytest.approx(result.intensity_scale)


def test_reloaded_bundle_predicts_bit_for_bit(trained, tiny_npz):
    _, job_dir, result = trained
    model = load_bundle(job_dir / result.bundle_path)
    again = load_bundle(job_dir / result.bundle_path)
    # The bundle holds the best checkpoint's weights: compare against that checkpoint directly.
    ckpt = torch.load(job_dir / result.best_checkpoint_path, map_location="cpu", weights_only=True)
    module = PtychoPINNModule(**{k: v for k, v in ckpt["hyper_parameters"].items()},
                              probe=model.probe.numpy())
    module.load_state_dict(ckpt["state_dict"])
    module.eval()
    c = model.cfg.group_size
    x = torch.rand(5, c, 32, 32, generator=torch.Generator().manual_seed(0)) * 3
    with torch.no_grad():
        a, b, ref = model.predict_object(x), again.predict_object(x), module(x)
    assert torch.equal(a, b) and torch.equal(a, ref)
    assert a.dtype == torch.complex64 and a.shape == (5, c, 32, 32)
    # Zero outside the central N/2 support, amplitude in (0, amplitude_max).
    assert float(a[..., :8, :].abs().max()) == 0.0
    inner = a[..., 8:24, 8:24]
    assert float(inner.abs().max()) < model.cfg.amplitude_max and float(inner.abs().min()) > 0.0


@pytest.mark.parametrize("gridsize", [1, 2])
def test_deterministic_cpu_runs_give_identical_losses(tmp_path, tiny_npz, gridsize, make_config, losses_of):
    results = [train_job(make_config(tiny_npz, tmp_path / f"run{i}", gridsize)) for i in range(2)]
    losses = [losses_of(tmp_path / f"run{i}", r.log_path) for i, r in enumerate(results)]
    assert losses[0] == losses[1] and len(losses[0]) == 2
    assert results[0].final_loss == results[1].final_loss
    assert results[0].bundle_sha256 == results[1].bundle_sha256


def test_photon_split_training_is_deterministic_and_recorded(tmp_path, tiny_npz, make_config, losses_of):
    runs = [train_job(make_config(tiny_npz, tmp_path / f"split{i}", 2, count_split=0.5, max_epochs=1))
            for i in range(2)]
    assert losses_of(tmp_path / "split0", runs[0].log_path) == losses_of(tmp_path / "split1", runs[1].log_path)
    assert runs[0].bundle_sha256 == runs[1].bundle_sha256
    assert read_manifest(tmp_path / "split0" / "wts.h5.zip").config["count_split"] == 0.5
    with pytest.raises(ValueError, match="count_split"):
        train_job(make_config(tiny_npz, tmp_path / "bad", count_split=1.0))


def test_no_logger_and_tensorboard(tmp_path, tiny_npz, make_config):
    r = train_job(make_config(tiny_npz, tmp_path / "none", max_epochs=1, logger="none"))
    assert r.log_path is None and not (tmp_path / "none" / "logs").exists()
    r = train_job(make_config(tiny_npz, tmp_path / "tb", max_epochs=1, logger="tensorboard"))
    assert list((tmp_path / "tb" / r.log_path).glob("events.out.tfevents.*"))


def test_training_reduces_the_loss(tmp_path, tiny_npz, make_config, losses_of):
    r = train_job(make_config(tiny_npz, tmp_path / "long", max_epochs=4, val_fraction=0.0))
    losses = [float(v) for _, v in losses_of(tmp_path / "long", r.log_path)]
    assert r.monitor == "train_loss"
    assert losses[-1] < losses[0]


def test_dataloader_workers_read_the_same_patterns(tmp_path, tiny_npz, make_config, losses_of):
    # The lazy reader reopens its file in each worker process; with deterministic
    # training, one worker must reproduce the in-process run's losses exactly.
    runs = [train_job(make_config(tiny_npz, tmp_path / f"w{w}", max_epochs=1, num_workers=w)) for w in (0, 1)]
    assert losses_of(tmp_path / "w0", runs[0].log_path) == losses_of(tmp_path / "w1", runs[1].log_path)
