"""The GPU code paths, run on CPU: bf16-mixed training, on-device batching, device defaults."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from fly64_train.backends.torch.data import DataConfig, Fly64DataModule
from fly64_train.backends.torch.device import DeviceDefaults, device_defaults
from fly64_train.backends.torch.model import PtychoPINN
from fly64_train.backends.torch.train import TrainingJob
from fly64_train.training.model_config import ModelConfig

CPU = device_defaults("cpu")
LAZY = replace(CPU, resident_bytes=0)


def test_bf16_mixed_trains_on_cpu_and_the_loss_decreases(tmp_path, tiny_npz, make_config, losses_of):
    cfg = make_config(tiny_npz, tmp_path / "bf16", 2, max_epochs=3, val_fraction=0.0, precision="bf16-mixed",
                      accelerator="cpu")
    result = TrainingJob(cfg).run()
    losses = [float(v) for _, v in losses_of(tmp_path / "bf16", result.log_path)]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]


def test_under_autocast_the_cnn_runs_in_bf16_and_the_physics_in_float32(tiny_sim):
    cfg = ModelConfig(patch_size=32, gridsize=2, base_width=4, depth=3, convs_per_level=1)
    model = PtychoPINN(cfg, tiny_sim["probe"], tiny_sim["scale"])
    seen = {}

    def record(_module, _inputs, output) -> None:  # a hook that returned a value would replace the output
        seen["conv"] = output.dtype

    model.cnn.encoder[0].register_forward_hook(record)
    diffraction = torch.from_numpy(tiny_sim["diffraction"][:8]).reshape(2, 4, 32, 32)
    offsets = torch.zeros(2, 4, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        obj = model.predict_object(diffraction)
        intensity = model(diffraction, offsets)
        loss = model.loss(diffraction, offsets, 0.5, torch.Generator().manual_seed(0))
    assert seen["conv"] == torch.bfloat16
    assert obj.dtype == torch.complex64 and intensity.dtype == torch.float32 and loss.dtype == torch.float32
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def _data_config(path, resident_bytes: int) -> DataConfig:
    return DataConfig(train_path=str(path), gridsize=2, neighbor_count=7, n_groups=None, grouping_seed=123,
                      batch_size=4, val_fraction=0.1, num_workers=0, seed=42, resident_bytes=resident_bytes)


def test_resident_and_lazy_batches_are_the_same_batches(tiny_npz):
    modules = [Fly64DataModule(_data_config(tiny_npz, budget)) for budget in (0, 2**30)]
    assert [m.resident for m in modules] == [False, True]
    for m in modules:
        m.setup("fit")
    for lazy, resident in zip(modules[0].train_dataloader(), modules[1].train_dataloader(), strict=True):
        gathered = modules[1].train_set.gather(resident)
        for key in ("diffraction", "offsets", "index"):
            assert torch.equal(lazy[key], gathered[key]), key


@pytest.mark.parametrize("gridsize", [1, 2])
def test_resident_and_lazy_training_give_identical_losses(tmp_path, tiny_npz, make_config, losses_of, gridsize):
    runs = {}
    for name, defaults in (("lazy", LAZY), ("resident", CPU)):
        cfg = make_config(tiny_npz, tmp_path / name, gridsize, accelerator="cpu")
        job = TrainingJob(cfg, defaults=defaults)
        result = job.run()
        runs[name] = (losses_of(tmp_path / name, result.log_path), result.bundle_sha256, job)
    assert runs["lazy"][0] == runs["resident"][0] and len(runs["lazy"][0]) == 2
    assert runs["lazy"][1] == runs["resident"][1]


def test_device_defaults_live_in_one_place():
    cpu = device_defaults("cpu")
    assert (cpu.device_type, cpu.batch_scale, cpu.lr_scale, cpu.matmul_precision, cpu.cudnn_benchmark) == \
        ("cpu", 1, 1.0, "highest", False)
    gpu = device_defaults("gpu")
    assert gpu.device_type == "cuda" and gpu.batch_scale > 1 and gpu.lr_scale == pytest.approx(gpu.batch_scale**0.5)
    assert gpu.matmul_precision == "high" and gpu.cudnn_benchmark
    assert device_defaults("auto").device_type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="batch_scale"):
        DeviceDefaults("cpu", batch_scale=0).check()


def test_gpu_defaults_scale_the_default_batch_and_its_learning_rate(tmp_path, tiny_npz, make_config):
    gpu_like = DeviceDefaults("cpu", batch_scale=4, lr_scale=2.0)
    default_batch = TrainingJob(make_config(tiny_npz, tmp_path / "a", batch_size=None), defaults=gpu_like)
    assert default_batch.build_data().config.batch_size == 16 * 4
    assert default_batch.learning_rate() == pytest.approx(2e-3)
    explicit = TrainingJob(make_config(tiny_npz, tmp_path / "b", batch_size=8), defaults=gpu_like)
    assert explicit.build_data().config.batch_size == 8 and explicit.learning_rate() == pytest.approx(1e-3)


def test_channels_last_training_matches_the_contiguous_layout(tmp_path, tiny_npz, make_config, losses_of):
    """The default NHWC layout changes strides only: same losses and weights as NCHW (to float32 rounding)."""
    runs = {}
    for name, defaults in (("nchw", replace(CPU, channels_last=False)), ("nhwc", CPU)):
        cfg = make_config(tiny_npz, tmp_path / name, 2, accelerator="cpu")
        job = TrainingJob(cfg, defaults=defaults)
        module = job.build_model(job.build_data())
        # A 1-channel kernel is contiguous in both layouts: look at one with several input channels.
        conv = next(m.weight for m in module.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
        assert conv.is_contiguous(memory_format=torch.channels_last) == defaults.channels_last
        assert conv.is_contiguous() != defaults.channels_last
        result = job.run()
        runs[name] = [float(v) for _, v in losses_of(tmp_path / name, result.log_path)]
    assert CPU.channels_last and len(runs["nchw"]) == 2
    assert runs["nhwc"] == pytest.approx(runs["nchw"], rel=1e-4)


def test_a_loaded_bundle_runs_on_the_gpu_when_there_is_one(tmp_path, tiny_sim):
    """``load_bundle`` and evaluation default to ``auto``: the GPU where torch sees one, else the CPU."""
    from fly64_train import load_bundle
    from fly64_train.backends.torch.bundle import save_bundle
    from fly64_train.backends.torch.device import inference_device

    cfg = ModelConfig(patch_size=32, gridsize=1, base_width=4, depth=3, convs_per_level=1)
    path = tmp_path / "wts.h5.zip"
    save_bundle(PtychoPINN(cfg, tiny_sim["probe"], tiny_sim["scale"]), path, config={})
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert inference_device("auto") == expected and inference_device("cpu") == "cpu"
    assert load_bundle(path).device.type == expected
    assert load_bundle(path, device="cpu").device.type == "cpu"


def _resumed_weights(job_dir, tiny_npz, make_config, first: DeviceDefaults, second: DeviceDefaults) -> dict:
    """Train one epoch with ``first``, resume to three with ``second``; the final floating-point state."""
    TrainingJob(make_config(tiny_npz, job_dir, max_epochs=1, accelerator="cpu"), defaults=first).run()
    TrainingJob(make_config(tiny_npz, job_dir, max_epochs=3, accelerator="cpu"), defaults=second).run()
    saved = torch.load(job_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return {k: v.contiguous() for k, v in saved["state_dict"].items() if v.is_floating_point()}


def test_a_checkpoint_written_in_nchw_resumes_in_channels_last_as_it_would_in_nchw(tmp_path, tiny_npz,
                                                                                  make_config):
    """Fused Adam pairs parameter and state elements in memory order: a resumed NCHW state next to a
    channels_last weight must be re-laid, or the updates silently mix up elements (0.01 off here)."""
    nchw = replace(CPU, channels_last=False)
    reference = _resumed_weights(tmp_path / "nchw", tiny_npz, make_config, nchw, nchw)
    mixed = _resumed_weights(tmp_path / "mixed", tiny_npz, make_config, nchw, CPU)
    assert reference.keys() == mixed.keys()
    assert max(float((mixed[k] - reference[k]).abs().max()) for k in reference) < 1e-4


def test_device_names_map_to_torch_and_a_missing_gpu_is_named():
    from fly64_train.backends.torch.device import inference_device

    assert inference_device("cpu") == "cpu"
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for name in ("gpu", "cuda", "cuda:0", "gpu:0"):
        if gpus:
            assert inference_device(name) == "cuda:0"
        else:
            with pytest.raises(ValueError, match=f"'{name}' asked for, but torch sees 0 GPU"):
                inference_device(name)
    with pytest.raises(ValueError, match=f"torch sees {gpus} GPU"):
        inference_device(f"cuda:{gpus}")
    for bad in ("CUDA", "mps", "cuda:00", "gpu:\u0660", "cuda:", "cpu:0", "meta", ""):
        with pytest.raises(ValueError, match="device must be auto, cpu, cuda, cuda:K, gpu or gpu:K"):
            inference_device(bad)


def test_a_gs2_job_sizes_its_merge_canvas_once_from_all_its_groups(tmp_path, tiny_npz, make_config):
    from fly64_train.backends.torch import physics

    assert device_defaults("gpu").fixed_canvas and not CPU.fixed_canvas
    gpu_like = replace(CPU, fixed_canvas=True)
    for gridsize, defaults in ((1, gpu_like), (2, gpu_like), (2, CPU)):
        job = TrainingJob(make_config(tiny_npz, tmp_path / f"gs{gridsize}", gridsize, accelerator="cpu"),
                          defaults=defaults)
        data = job.build_data()
        module = job.build_model(data)
        fixed = gridsize > 1 and defaults.fixed_canvas
        expected = physics.canvas_size(torch.from_numpy(data.groups.offsets), 32) if fixed else None
        assert module.model.canvas_side == expected
    # A job with the fixed canvas trains (the merge of every batch fits it).
    result = TrainingJob(make_config(tiny_npz, tmp_path / "fixed", 2, accelerator="cpu"), defaults=gpu_like).run()
    assert result.epochs_completed == 2 and math.isfinite(result.final_loss)
