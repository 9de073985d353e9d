"""Real Keras training on tiny data: both backends learn alike; determinism; resume; weights checks."""

from __future__ import annotations

import csv
import hashlib
import zipfile

import h5py
import numpy as np
import pytest

from fly64_train.backends.tensorflow.train import train_job_tf
from fly64_train.backends.tensorflow.weights import WeightsError, load_model, load_weights, read_layout
from fly64_train.backends.torch.bundle import load_bundle
from fly64_train.backends.torch.train import train_job
from fly64_train.data.reader import open_dataset
from fly64_train.training.model_config import ModelConfig

EPOCHS = 8
#: conftest's TINY_MODEL at the tiny data's N.
TINY_32 = ModelConfig(patch_size=32, base_width=4, depth=3, convs_per_level=1)


def _tf_losses(job_dir, log_path) -> list[tuple[str, str]]:
    """(epoch, loss) rows of Keras's CSVLogger file (Keras names the train loss ``loss``)."""
    with (job_dir / log_path).open() as fh:
        return [(row["epoch"], row["loss"]) for row in csv.DictReader(fh)]


def _settings(make_config, npz, job_dir, **kw):
    # Full counts (no photon split) and no validation hold-out: the quality comparison then
    # depends on the optimisation alone, which is what the two backends share.
    base = dict(max_epochs=EPOCHS, count_split=None, val_fraction=0.0, batch_size=8)
    return make_config(npz, job_dir, 1, **{**base, **kw})


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_npz, make_config):
    root = tmp_path_factory.mktemp("tf_vs_torch")
    tf_result = train_job_tf(_settings(make_config, tiny_npz, root / "tf"))
    torch_result = train_job(_settings(make_config, tiny_npz, root / "torch"))
    return root, tf_result, torch_result


def _amplitude_pearson(predict, npz, sim):
    info = open_dataset(npz)
    diffraction = info.diffraction.read_rows(slice(None))[:, None]
    obj = predict(diffraction)[:, 0, 8:24, 8:24]
    truth = sim["Y"][info.readers["scan_index"].read_all()][:, 8:24, 8:24]
    return float(np.corrcoef(np.abs(obj).ravel(), np.abs(truth).ravel())[0, 1])


def test_both_backends_reduce_the_loss_and_reach_the_same_quality(runs, tiny_npz, tiny_sim, losses_of):
    import torch

    root, tf_result, torch_result = runs
    tf_losses = [float(v) for _, v in _tf_losses(root / "tf", tf_result["log_path"])]
    torch_losses = [float(v) for _, v in losses_of(root / "torch", torch_result["log_path"])]
    assert len(tf_losses) == len(torch_losses) == EPOCHS
    assert tf_losses[-1] < tf_losses[0] and torch_losses[-1] < torch_losses[0]
    assert tf_result["global_step"] == torch_result["global_step"]

    keras_model = load_model(root / "tf" / tf_result["best_checkpoint_path"], TINY_32)
    torch_model = load_bundle(root / "torch" / torch_result["bundle_path"])
    with torch.no_grad():
        r_torch = _amplitude_pearson(lambda d: torch_model.predict_object(torch.from_numpy(d)).numpy(),
                                     tiny_npz, tiny_sim)
    r_tf = _amplitude_pearson(keras_model.predict_object, tiny_npz, tiny_sim)
    print(f"amplitude Pearson: torch {r_torch:.3f}, tensorflow {r_tf:.3f}; "
          f"final loss torch {torch_losses[-1]:.4f}, tensorflow {tf_losses[-1]:.4f}")
    assert r_torch > 0.2 and r_tf > 0.2
    assert abs(r_torch - r_tf) < 0.05


def test_tf_training_writes_checkpoints_logs_and_bundle(runs):
    root, result, _ = runs
    job = root / "tf"
    assert result["status"] == "completed" and result["epochs_completed"] == EPOCHS
    assert result["checkpoint_path"] == "checkpoints/last.weights.h5"
    for name in ("last.weights.h5", "best.weights.h5", "last.json"):
        assert (job / "checkpoints" / name).is_file()
    bundle = job / result["bundle_path"]
    assert result["bundle_sha256"] == hashlib.sha256(bundle.read_bytes()).hexdigest()
    with zipfile.ZipFile(bundle) as zf:
        assert sorted(zf.namelist()) == ["manifest.json", "models/diffraction_to_obj.weights.h5",
                                         "models/forward_model.weights.h5"]
    # The weights are plain HDF5: h5py alone lists every tensor.
    layout = read_layout(job / "checkpoints" / "last.weights.h5")
    assert any(name.startswith("cnn/") for name in layout) and "forward_model/vars/0" in layout
    with h5py.File(job / "checkpoints" / "last.weights.h5") as fh:
        assert fh["forward_model/vars/1"][()] == pytest.approx(result["intensity_scale"])


def test_deterministic_tf_runs_give_identical_losses(runs, tmp_path, tiny_npz, make_config):
    root, first, _ = runs
    again = train_job_tf(_settings(make_config, tiny_npz, tmp_path / "again"))
    assert _tf_losses(tmp_path / "again", again["log_path"]) == _tf_losses(root / "tf", first["log_path"])
    assert again["final_loss"] == first["final_loss"]


def test_resume_continues_from_last_weights_as_if_never_stopped(runs, tmp_path, tiny_npz, make_config):
    root, straight, _ = runs
    job = tmp_path / "resumed"
    stopped = train_job_tf(_settings(make_config, tiny_npz, job, max_epochs=EPOCHS - 1))
    assert stopped["resumed_from"] is None and stopped["epochs_completed"] == EPOCHS - 1
    resumed = train_job_tf(_settings(make_config, tiny_npz, job))
    assert resumed["resumed_from"] == "checkpoints/last.weights.h5"
    assert resumed["epochs_completed"] == EPOCHS and resumed["global_step"] == straight["global_step"]
    # Weights, Adam's moments, the shuffling order and the plateau state all carried over:
    # the resumed run's log is the uninterrupted run's, epoch for epoch.
    assert _tf_losses(job, resumed["log_path"]) == _tf_losses(root / "tf", straight["log_path"])


def test_weights_of_another_architecture_are_refused(runs, tiny_sim):
    root, result, _ = runs
    wide = ModelConfig(**{**TINY_32.to_dict(), "base_width": 8})
    with pytest.raises(WeightsError, match=r"last\.weights\.h5: weights do not fit .*first:"):
        load_model(root / "tf" / result["checkpoint_path"], wide)
    not_h5 = root / "garbage.weights.h5"
    not_h5.write_bytes(b"not an hdf5 file")
    narrow = load_model(root / "tf" / result["checkpoint_path"], TINY_32)
    with pytest.raises(WeightsError, match="not a readable HDF5"):
        load_weights(narrow, not_h5)
