"""The Keras bundle's own error paths (those of the torch loader), and a machine without TensorFlow."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

from fly64_data.sample import synthetic_probe
from fly64_train import BundleError, load_bundle
from fly64_train.backends.tensorflow.bundle import save_bundle
from fly64_train.backends.tensorflow.model import PtychoPINN
from fly64_train.training.model_config import ModelConfig

CNN = "models/diffraction_to_obj.weights.h5"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    model = PtychoPINN(ModelConfig(patch_size=32, base_width=4), synthetic_probe(32), 3.5)
    path = tmp_path_factory.mktemp("keras") / "wts.h5.zip"
    save_bundle(model, path, config={"max_epochs": 1})
    return model, path



def test_a_keras_bundle_loads_back_to_the_same_predictions(bundle):
    model, path = bundle
    loaded = load_bundle(path)
    x = np.random.default_rng(0).random((2, 1, 32, 32), dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict_object(x), model.predict_object(x))
    np.testing.assert_array_equal(loaded.support(), np.asarray(model.forward_model.support))
    with pytest.raises(ValueError, match=r"shape \(B, 1, 32, 32\)"):
        loaded.predict_object(x[:, 0])


def test_weights_that_do_not_fit_the_manifest_architecture_are_refused(bundle, tmp_path, rewrite_bundle):
    _, path = bundle
    out = rewrite_bundle(path, tmp_path / "wide.zip", lambda d: d["model_config"].update(base_width=8))
    with pytest.raises(BundleError, match=r"wide\.zip: model file '.*diffraction_to_obj\.weights\.h5': weights do "
                                          r"not fit the diffraction_to_obj architecture"):
        load_bundle(out)


def test_tampered_weights_fail_their_checksum(bundle, tmp_path, rewrite_bundle):
    _, path = bundle
    with zipfile.ZipFile(path) as zf:
        data = bytearray(zf.read(CNN))
    data[-1] ^= 0xFF
    out = rewrite_bundle(path, tmp_path / "swap.zip", replace={CNN: bytes(data)})
    with pytest.raises(BundleError, match=r"swap\.zip: model file .* does not match its sha256"):
        load_bundle(out)


def test_a_member_that_is_not_hdf5_is_refused_even_with_a_matching_checksum(bundle, tmp_path, rewrite_bundle):
    _, path = bundle
    data = b"\x80\x04not hdf5 but a pickle-looking stream."

    def edit(doc):
        entry = next(m for m in doc["models"] if m["file"] == CNN)
        entry.update(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))

    out = rewrite_bundle(path, tmp_path / "junk.zip", edit, replace={CNN: data})
    with pytest.raises(BundleError, match=r"junk\.zip: model file .*: not a readable HDF5 weights file"):
        load_bundle(out)


def test_without_tensorflow_a_keras_bundle_is_a_one_line_error_naming_the_extra(bundle):
    _, path = bundle
    script = textwrap.dedent("""
        import sys
        sys.modules["tensorflow"] = None  # as on a machine where it is not installed
        from fly64_train import BundleError, load_bundle
        try:
            load_bundle(sys.argv[1])
        except BundleError as exc:
            print("REFUSED", exc)
    """)
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("REFUSED"), out.stdout + out.stderr
    assert str(path) in lines[0] and "fly64-train[tensorflow]" in lines[0] and "not installed" in lines[0]


def test_device_names_map_to_tensorflow_and_a_missing_gpu_is_named():
    import tensorflow as tf

    from fly64_train.backends.tensorflow.device import tf_device

    gpus = len(tf.config.list_physical_devices("GPU"))
    assert tf_device("cpu") == "/CPU:0" and tf_device("auto") == ("/GPU:0" if gpus else "/CPU:0")
    with pytest.raises(ValueError, match=f"TensorFlow sees {gpus} GPU"):
        tf_device(f"cuda:{gpus}")  # TensorFlow would otherwise place it on the CPU without a word
    with pytest.raises(ValueError, match="device must be auto, cpu, cuda, cuda:K, gpu or gpu:K"):
        tf_device("GPU")
