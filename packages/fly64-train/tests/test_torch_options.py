"""The torch backend's options nested in TrainConfig: their checks, the one device vocabulary, and the
older flat layout (top-level ``accelerator``, ``precision`` ...) that bundles and job folders still hold."""

from __future__ import annotations

import pytest

from fly64_train.core.device import ACCELERATORS, DEVICE_KINDS, check_device, normal_device
from fly64_train.training.config import TrainConfig
from fly64_train.training.torch_options import FLAT_TORCH_KEYS, TorchOptions, nest_flat_keys


@pytest.mark.parametrize(("values", "name"), [
    ({"accelerator": "tpu"}, "accelerator"),
    ({"accelerator": "CUDA"}, "accelerator"),
    ({"accelerator": "cuda:1"}, "accelerator"),  # a GPU index is --devices' business, not the accelerator's
    ({"accelerator": 5}, "accelerator"),
    ({"devices": 0}, "devices"),
    ({"devices": "two"}, "devices"),
    ({"devices": True}, "devices"),
    ({"devices": 10**6}, "devices"),
    ({"strategy": "horovod"}, "strategy"),
    ({"precision": "16"}, "precision"),
    ({"precision": None}, "precision"),
    ({"num_workers": -1}, "num_workers"),
    ({"num_workers": 1.5}, "num_workers"),
])
def test_check_refuses_a_bad_value_in_one_line_naming_the_field(values, name):
    options = TorchOptions(**values)
    with pytest.raises(ValueError) as err:
        options.check()
    assert str(err.value).startswith(f"{name} ") and "\n" not in str(err.value)
    # Inside a training configuration the field is named by its path.
    with pytest.raises(ValueError) as err:
        TrainConfig(train_path="t.npz", job_dir="j", torch=options).check()
    assert str(err.value).startswith(f"torch.{name} ") and "\n" not in str(err.value)


def test_the_defaults_and_every_offered_value_pass_check():
    TorchOptions().check()
    for accelerator in ACCELERATORS:
        TorchOptions(accelerator=accelerator, devices=2, num_workers=4).check()


def test_a_config_holding_something_else_than_torch_options_is_refused():
    with pytest.raises(ValueError, match=r"^torch must be the torch options"):
        TrainConfig(train_path="t.npz", job_dir="j", torch={"accelerator": "cpu"}).check()


def test_options_are_frozen():
    with pytest.raises(AttributeError):
        TorchOptions().accelerator = "cpu"  # type: ignore[misc]


@pytest.mark.parametrize(("name", "canonical"), [("auto", "auto"), ("cpu", "cpu"), ("cuda", "cuda"), ("gpu", "cuda"),
                                                 ("gpu:2", "cuda:2"), ("cuda:0", "cuda:0")])
def test_one_device_vocabulary_gpu_is_an_alias_of_cuda(name, canonical):
    assert normal_device(name) == canonical
    if ":" not in name:
        assert TorchOptions(accelerator=name).device_kind == canonical
    assert set(DEVICE_KINDS) == {normal_device(a) for a in ACCELERATORS}


@pytest.mark.parametrize(("name", "checked"), [("auto", ("auto", None)), ("cpu", ("cpu", None)), ("cuda", ("cuda", 0)),
                                               ("gpu", ("cuda", 0)), ("gpu:3", ("cuda", 3)), ("cuda:3", ("cuda", 3))])
def test_a_checked_name_reports_its_canonical_kind(name, checked):
    """``cuda`` is the one canonical spelling: check_device reports it for ``gpu`` too, as normal_device writes it."""
    assert check_device(name) == checked
    assert check_device(name)[0] in DEVICE_KINDS and normal_device(name).startswith(check_device(name)[0])


@pytest.mark.parametrize("name", ["tpu", "GPU", "cuda:01", "", "mps"])
def test_a_name_outside_the_vocabulary_is_refused(name):
    with pytest.raises(ValueError, match="device must be auto, cpu, cuda"):
        normal_device(name)


def _old_layout(config: TrainConfig) -> dict:
    """``config`` as a bundle written before the nesting recorded it: the torch options as top-level keys."""
    data = config.json_config()
    return {**{k: v for k, v in data.items() if k != "torch"}, **data["torch"]}


def test_a_config_recorded_in_the_old_flat_layout_loads_into_the_torch_options():
    config = TrainConfig(train_path="t.npz", job_dir="j", max_epochs=3, deterministic=True,
                         torch=TorchOptions(accelerator="gpu", devices=2, strategy="ddp", precision="bf16-mixed",
                                            num_workers=3))
    old = _old_layout(config)
    assert set(FLAT_TORCH_KEYS) <= set(old) and "torch" not in old
    loaded = TrainConfig.from_recorded(old)
    assert loaded.torch == config.torch and loaded.deterministic and loaded.max_epochs == 3
    # The nested layout reads back the same; a new write is nested.
    assert TrainConfig.from_recorded(config.json_config()).torch == config.torch
    assert config.json_config()["torch"]["precision"] == "bf16-mixed" and "precision" not in config.json_config()


def test_a_bad_old_layout_value_is_refused_naming_the_nested_field():
    with pytest.raises(ValueError, match=r"^torch\.precision must be one of"):
        TrainConfig.from_recorded({"precision": "16"})


def test_a_key_both_flat_and_nested_is_refused():
    with pytest.raises(ValueError, match=r"^torch\.accelerator is given both"):
        nest_flat_keys({"accelerator": "cpu", "torch": {"accelerator": "cuda"}})
    # Different keys in the two layouts are merged.
    assert nest_flat_keys({"precision": "16-mixed", "torch": {"accelerator": "cpu"}}) == \
        {"torch": {"accelerator": "cpu", "precision": "16-mixed"}}


def test_unknown_nested_keys_are_refused():
    with pytest.raises(ValueError, match=r"^torch: unknown torch option\(s\): tpu_cores"):
        TrainConfig.from_recorded({"torch": {"tpu_cores": 8}})
    with pytest.raises(ValueError, match=r"^torch must be an object"):
        TrainConfig.from_recorded({"torch": "cpu"})
