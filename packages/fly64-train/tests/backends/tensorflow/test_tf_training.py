"""Real Keras training on tiny data, through the backend seam.

Fast: one tiny job through ``get_backend("tensorflow")``, its checkpoints, logs and
bundle, and the bundle loaded back through ``load_bundle`` and used through the numpy
seam. Slow (``nox -s slow``): both backends from the same initial weights reach the
same quality; two identical runs give identical losses; resume; foreign weights refused.
"""

from __future__ import annotations

import csv
import json
import zipfile
from dataclasses import replace

import h5py
import keras
import numpy as np
import pytest

from fly64_manifest import sha256_file
from fly64_train import load_bundle
from fly64_train.backends.tensorflow.convert import load_torch_state
from fly64_train.backends.tensorflow.weights import WeightsError, load_model, load_weights, read_layout
from fly64_train.core.seam import get_backend
from fly64_train.data.reader import open_dataset
from fly64_train.training.model_config import ModelConfig

EPOCHS = 16
#: conftest's TINY_MODEL at the tiny data's N.
TINY_32 = ModelConfig(patch_size=32, base_width=4, depth=3, convs_per_level=1)


def _tf_losses(job_dir, log_path) -> list[tuple[str, str]]:
    """(epoch, loss) rows of Keras's CSVLogger file (Keras names the train loss ``loss``)."""
    with (job_dir / log_path).open() as fh:
        return [(row["epoch"], row["loss"]) for row in csv.DictReader(fh)]


def _tf_config(make_config, npz, job_dir, **kw):
    return make_config(npz, job_dir, 1, **{"backend": "tensorflow", **kw})


@pytest.fixture(scope="module")
def tiny_job(tmp_path_factory, tiny_npz, make_config):
    job = tmp_path_factory.mktemp("tf_job")
    # Few groups and one validation group: every code path (train and test steps) traced, few steps run.
    return job, get_backend("tensorflow").train(_tf_config(make_config, tiny_npz, job, max_epochs=2, n_groups=24,
                                                           val_fraction=0.05))


def test_a_tiny_job_trains_through_the_seam_and_its_bundle_predicts_through_numpy(tiny_job, tiny_npz):
    job, result = tiny_job
    assert result.backend == "tensorflow" and result.status == "completed" and result.epochs_completed == 2
    assert result.monitor == "val_loss" and result.n_val_groups > 0 and result.final_loss is not None
    assert result.checkpoint_path == "checkpoints/last.weights.h5"
    for name in ("last.weights.h5", "best.weights.h5", "last.json"):
        assert (job / "checkpoints" / name).is_file()
    assert [row[0] for row in _tf_losses(job, result.log_path)] == ["0", "1"]

    bundle = job / result.bundle_path
    assert (result.bundle_sha256, result.bundle_size_bytes) == sha256_file(bundle)
    with zipfile.ZipFile(bundle) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert zf.namelist() == ["manifest.json", "models/diffraction_to_obj.weights.h5",
                                 "models/forward_model.weights.h5"]
        for entry in manifest["models"]:
            assert entry["size_bytes"] == len(zf.read(entry["file"]))
    assert manifest["backend"] == "tensorflow" and manifest["format_version"] == "2.0"
    assert manifest["config"]["backend"] == "tensorflow" and "job_dir" not in manifest["config"]
    # The weights are plain HDF5: h5py alone lists every tensor, with the intensity scale in the clear.
    with h5py.File(job / "checkpoints" / "last.weights.h5") as fh:
        assert fh["forward_model/vars/1"][()] == pytest.approx(result.intensity_scale)

    model = load_bundle(bundle, expected_sha256=result.bundle_sha256)
    assert (model.gridsize, model.patch_size) == (1, 32) and model.support().shape == (32, 32)
    diffraction = open_dataset(tiny_npz).diffraction.read_rows(slice(0, 5))[:, None]
    obj = model.predict_object(diffraction)
    assert obj.dtype == np.complex64 and obj.shape == (5, 1, 32, 32)
    assert np.isfinite(obj).all() and np.abs(obj).std() > 0  # trained: no longer the flat start


# -- slow: several trainings ----------------------------------------------------------------------

def _comparison(make_config, npz, job_dir, backend, **kw):
    # Full counts (no photon split) and no validation hold-out: the quality comparison then
    # depends on the optimisation alone, which is what the two backends share.
    base = dict(max_epochs=EPOCHS, count_split=None, val_fraction=0.0, batch_size=8, backend=backend)
    return make_config(npz, job_dir, 1, **{**base, **kw})


class StartFrom(keras.callbacks.Callback):
    """Before the first step, overwrite the Keras model's fresh init with a torch state dict."""

    def __init__(self, state: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.state = state

    def on_train_begin(self, logs=None) -> None:
        load_torch_state(self.model, self.state)


def _torch_initial_state(cfg, npz) -> dict[str, np.ndarray]:
    """The weights the torch backend's job starts from: its seed, then the model (as TrainingJob builds it)."""
    import lightning as L

    from fly64_train.backends.torch.model import PtychoPINN

    info = open_dataset(npz)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    model = PtychoPINN(replace(cfg.model, patch_size=info.patch_size, gridsize=cfg.gridsize), info.probe,
                       info.intensity_scale)
    return {k: v.numpy() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_npz, make_config):
    from fly64_train.backends.tensorflow.train import train_job

    root = tmp_path_factory.mktemp("tf_vs_torch")
    tf_cfg = _comparison(make_config, tiny_npz, root / "tf", "tensorflow")
    tf_result = train_job(tf_cfg, callbacks=[StartFrom(_torch_initial_state(tf_cfg, tiny_npz))])
    torch_result = get_backend("torch").train(_comparison(make_config, tiny_npz, root / "torch", "torch"))
    return root, tf_result, torch_result


def _amplitude_pearson(model, npz, sim):
    info = open_dataset(npz)
    obj = model.predict_object(info.diffraction.read_rows(slice(None))[:, None])[:, 0, 8:24, 8:24]
    truth = sim["Y"][info.readers["scan_index"].read_all()][:, 8:24, 8:24]
    return float(np.corrcoef(np.abs(obj).ravel(), np.abs(truth).ravel())[0, 1])


@pytest.mark.slow
def test_both_backends_from_the_same_init_reduce_the_loss_and_reach_the_same_quality(runs, tiny_npz, tiny_sim,
                                                                                    losses_of):
    root, tf_result, torch_result = runs
    tf_losses = [float(v) for _, v in _tf_losses(root / "tf", tf_result.log_path)]
    torch_losses = [float(v) for _, v in losses_of(root / "torch", torch_result.log_path)]
    assert len(tf_losses) == len(torch_losses) == EPOCHS
    assert tf_losses[-1] < tf_losses[0] and torch_losses[-1] < torch_losses[0]
    assert tf_result.global_step == torch_result.global_step
    r_torch = _amplitude_pearson(load_bundle(root / "torch" / torch_result.bundle_path), tiny_npz, tiny_sim)
    r_tf = _amplitude_pearson(load_bundle(root / "tf" / tf_result.bundle_path), tiny_npz, tiny_sim)
    print(f"amplitude Pearson: torch {r_torch:.3f}, tensorflow {r_tf:.3f}; "
          f"final loss torch {torch_losses[-1]:.4f}, tensorflow {tf_losses[-1]:.4f}")
    assert r_torch > 0.2 and r_tf > 0.2
    assert abs(r_torch - r_tf) < 0.05


@pytest.mark.slow
def test_deterministic_tf_runs_give_identical_losses(tiny_job, tmp_path, tiny_npz, make_config):
    job, first = tiny_job
    again = get_backend("tensorflow").train(_tf_config(make_config, tiny_npz, tmp_path / "again", max_epochs=2,
                                                       n_groups=24, val_fraction=0.05))
    assert _tf_losses(tmp_path / "again", again.log_path) == _tf_losses(job, first.log_path)
    assert again.final_loss == first.final_loss and again.bundle_sha256 == first.bundle_sha256


@pytest.mark.slow
def test_resume_continues_from_last_weights_as_if_never_stopped(runs, tmp_path, tiny_npz, make_config):
    from fly64_train.backends.tensorflow.train import train_job

    root, straight, _ = runs
    job = tmp_path / "resumed"
    start = StartFrom(_torch_initial_state(_comparison(make_config, tiny_npz, job, "tensorflow"), tiny_npz))
    stopped = train_job(_comparison(make_config, tiny_npz, job, "tensorflow", max_epochs=EPOCHS - 1),
                        callbacks=[start])
    assert stopped.resumed_from is None and stopped.epochs_completed == EPOCHS - 1
    resumed = train_job(_comparison(make_config, tiny_npz, job, "tensorflow"))
    assert resumed.resumed_from == "checkpoints/last.weights.h5"
    assert resumed.epochs_completed == EPOCHS and resumed.global_step == straight.global_step
    # Weights, Adam's moments, the shuffling order and the plateau state all carried over:
    # the resumed run's log is the uninterrupted run's, epoch for epoch.
    assert _tf_losses(job, resumed.log_path) == _tf_losses(root / "tf", straight.log_path)


@pytest.mark.slow
def test_weights_of_another_architecture_are_refused(tiny_job):
    job, result = tiny_job
    wide = ModelConfig(**{**TINY_32.to_dict(), "base_width": 8})
    with pytest.raises(WeightsError, match=r"last\.weights\.h5: weights do not fit .*first:"):
        load_model(job / result.checkpoint_path, wide)
    not_h5 = job / "garbage.weights.h5"
    not_h5.write_bytes(b"not an hdf5 file")
    narrow = load_model(job / result.checkpoint_path, TINY_32)
    assert read_layout(job / result.checkpoint_path)
    with pytest.raises(WeightsError, match="not a readable HDF5"):
        load_weights(narrow, not_h5)


@pytest.mark.parametrize(("option", "value"), [("precision", "bf16-mixed"), ("strategy", "ddp")])
def test_a_torch_option_that_changes_what_is_trained_is_refused(tmp_path, tiny_npz, make_config, option, value):
    # Lightning's precision and strategy live in config.torch; Keras cannot honour them, so the job is refused
    # (before any folder is written) rather than recorded with settings its weights never saw.
    cfg = _tf_config(make_config, tiny_npz, tmp_path / "job", **{option: value})
    assert getattr(cfg.torch, option) == value
    with pytest.raises(ValueError, match=f"tensorflow backend .*{value}"):
        get_backend("tensorflow").train(cfg)
    assert not (tmp_path / "job").exists()


def test_the_torch_placement_options_are_ignored(tmp_path, tiny_npz, make_config):
    cfg = _tf_config(make_config, tiny_npz, tmp_path / "job", max_epochs=1, n_groups=8, accelerator="cpu",
                     devices=1, num_workers=2)
    assert get_backend("tensorflow").train(cfg).status == "completed"
