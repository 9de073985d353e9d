"""The wts.h5.zip bundle: format, safety and clear errors."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import torch

from fly64_data.sample import synthetic_probe
from fly64_manifest import validate
from fly64_train.backends.torch.bundle import BundleError, load_bundle, read_manifest, save_bundle
from fly64_train.backends.torch.model import PtychoPINN
from fly64_train.training.model_config import ModelConfig


@pytest.fixture()
def bundle(tmp_path):
    torch.manual_seed(0)
    model = PtychoPINN(ModelConfig(patch_size=32, base_width=4), synthetic_probe(32), 3.5)
    info = save_bundle(model, tmp_path / "wts.h5.zip", config={"max_epochs": 1})
    return model, tmp_path / "wts.h5.zip", info


def test_bundle_is_a_zip_of_manifest_and_plain_tensors(bundle):
    model, path, info = bundle
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
        assert names[0] == "manifest.json"
        for entry in manifest["models"]:
            state = torch.load(io.BytesIO(zf.read(entry["file"])), weights_only=True)
            assert all(isinstance(v, torch.Tensor) for v in state.values())
    validate(manifest, "bundle_manifest")
    assert {m["name"] for m in manifest["models"]} == {"diffraction_to_obj", "forward_model"}
    assert manifest["format_version"] == "1.0" and manifest["backend"] == "torch"
    assert len(info["sha256"]) == 64 and info["size_bytes"] == path.stat().st_size
    loaded = load_bundle(path)
    assert not loaded.training
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.predict_object(x), model.eval().predict_object(x))


def test_truncated_zip_is_a_clear_error(bundle, tmp_path):
    _, path, _ = bundle
    cut = tmp_path / "cut.zip"
    cut.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(BundleError, match=r"cut\.zip: .*(truncated|corrupt)"):
        load_bundle(cut)


def _rewrite(path, out, edit_manifest=None, replace=None):
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "manifest.json" and edit_manifest:
                doc = json.loads(data)
                edit_manifest(doc)
                data = json.dumps(doc).encode()
            if replace and name in replace:
                data = replace[name]
            dst.writestr(name, data)
    return out


def test_other_format_version_is_refused(bundle, tmp_path):
    _, path, _ = bundle
    out = _rewrite(path, tmp_path / "v2.zip", lambda d: d.update(format_version="2.0"))
    with pytest.raises(BundleError, match=r"v2\.zip: bundle format_version '2\.0' is not supported"):
        load_bundle(out)


def test_weights_that_do_not_fit_are_refused(bundle, tmp_path):
    _, path, _ = bundle
    out = _rewrite(path, tmp_path / "wide.zip", lambda d: d["model_config"].update(base_width=8))
    with pytest.raises(BundleError, match=r"wide\.zip: weights do not fit the model"):
        load_bundle(out)


def test_tampered_weights_fail_their_checksum(bundle, tmp_path):
    _, path, _ = bundle
    buf = io.BytesIO()
    torch.save({"x": torch.zeros(1)}, buf)
    out = _rewrite(path, tmp_path / "swap.zip", replace={"models/diffraction_to_obj.pt": buf.getvalue()})
    with pytest.raises(BundleError, match="does not match its sha256"):
        load_bundle(out)


def test_pickled_payload_is_refused_even_with_a_matching_checksum(bundle, tmp_path):
    _, path, _ = bundle
    buf = io.BytesIO()
    torch.save({"evil": np.dtype}, buf)  # not a plain tensor: weights_only must refuse it
    data = buf.getvalue()
    import hashlib

    def edit(doc):
        doc["models"][0]["sha256"] = hashlib.sha256(data).hexdigest()

    out = _rewrite(path, tmp_path / "pickle.zip", edit, replace={"models/diffraction_to_obj.pt": data})
    with pytest.raises(BundleError, match="cannot load .* as plain tensors"):
        load_bundle(out)


def test_read_manifest_and_missing_file(bundle, tmp_path):
    _, path, _ = bundle
    assert read_manifest(path)["N"] == 32
    with pytest.raises(BundleError, match="not found"):
        load_bundle(tmp_path / "nope.zip")


def test_bundle_without_the_newer_model_fields_loads_as_the_architecture_it_was_saved_with(tmp_path):
    # Bundles written before input_fraction/flat_start/merge_weights existed: full-frame encoder,
    # Glorot heads, support merge weights.
    torch.manual_seed(0)
    cfg = ModelConfig(patch_size=32, base_width=4, **ModelConfig.LEGACY)
    model = PtychoPINN(cfg, synthetic_probe(32), 3.5)
    save_bundle(model, tmp_path / "new.zip", config={})

    def strip(doc):
        for key in ModelConfig.LEGACY:
            doc["model_config"].pop(key)

    old = _rewrite(tmp_path / "new.zip", tmp_path / "old.zip", strip)
    loaded = load_bundle(old)
    assert loaded.cfg == cfg
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.predict_object(x), model.eval().predict_object(x))
    # A current-architecture bundle stripped the same way no longer fits its weights: refused, not misread.
    current = PtychoPINN(ModelConfig(patch_size=32, base_width=4), synthetic_probe(32), 3.5)
    save_bundle(current, tmp_path / "current.zip", config={})
    with pytest.raises(BundleError, match=r"x\.zip: weights do not fit the model"):
        load_bundle(_rewrite(tmp_path / "current.zip", tmp_path / "x.zip", strip))
