"""The torch bundle (format 2.0: safetensors; format 1.x still loads): format, safety and clear errors."""

from __future__ import annotations

import hashlib
import io
import json
import pickletools
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
    from safetensors.torch import load

    model, path, info = bundle
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
        assert names[0] == "manifest.json"
        for entry in manifest["models"]:
            data = zf.read(entry["file"])
            assert entry["file"].endswith(".safetensors") and entry["size_bytes"] == len(data)
            state = load(data)
            assert all(isinstance(v, torch.Tensor) for v in state.values())
    validate(manifest, "bundle_manifest")
    assert {m["name"] for m in manifest["models"]} == {"diffraction_to_obj", "forward_model"}
    assert manifest["format_version"] == "2.0" and manifest["backend"] == "torch"
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



def test_other_format_version_is_refused(bundle, tmp_path, rewrite_bundle):
    _, path, _ = bundle
    out = rewrite_bundle(path, tmp_path / "v3.zip", lambda d: d.update(format_version="3.0"))
    with pytest.raises(BundleError, match=r"v3\.zip: bundle format_version '3\.0' is not supported"):
        load_bundle(out)


def test_weights_that_do_not_fit_are_refused(bundle, tmp_path, rewrite_bundle):
    _, path, _ = bundle
    out = rewrite_bundle(path, tmp_path / "wide.zip", lambda d: d["model_config"].update(base_width=8))
    with pytest.raises(BundleError, match=r"wide\.zip: weights do not fit the model"):
        load_bundle(out)


def test_tampered_weights_fail_their_checksum(bundle, tmp_path, rewrite_bundle):
    _, path, _ = bundle
    from safetensors.torch import save

    data = save({"x": torch.zeros(1)})
    out = rewrite_bundle(path, tmp_path / "swap.zip", replace={"models/diffraction_to_obj.safetensors": data},
                   edit_manifest=lambda d: d["models"][0].update(size_bytes=len(data)))
    with pytest.raises(BundleError, match="does not match its sha256"):
        load_bundle(out)


def test_pickled_payload_is_refused_even_with_a_matching_checksum(bundle, tmp_path, rewrite_bundle):
    _, path, _ = bundle
    buf = io.BytesIO()
    torch.save({"evil": np.dtype}, buf)  # a pickle stream: neither safetensors nor weights_only may accept it
    data = buf.getvalue()

    def edit(doc):
        doc["models"][0].update(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))

    out = rewrite_bundle(path, tmp_path / "pickle.zip", edit, replace={"models/diffraction_to_obj.safetensors": data})
    with pytest.raises(BundleError, match="cannot load .* as safetensors"):
        load_bundle(out)
    legacy = write_legacy_bundle(PtychoPINN(ModelConfig(patch_size=32, base_width=4), synthetic_probe(32), 3.5),
                                 tmp_path / "legacy.zip")

    def edit_legacy(doc):
        doc["models"][0].update(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))

    out = rewrite_bundle(legacy, tmp_path / "pickle1.zip", edit_legacy, replace={"models/diffraction_to_obj.pt": data})
    with pytest.raises(BundleError, match="cannot load .* as plain tensors"):
        load_bundle(out)


def test_read_manifest_and_missing_file(bundle, tmp_path):
    _, path, _ = bundle
    assert read_manifest(path).patch_size == 32
    with pytest.raises(BundleError, match="not found"):
        load_bundle(tmp_path / "nope.zip")


def test_bundle_without_the_newer_model_fields_loads_as_the_architecture_it_was_saved_with(tmp_path, rewrite_bundle):
    # Bundles written before input_fraction/flat_start/merge_weights existed: full-frame encoder,
    # Glorot heads, support merge weights.
    torch.manual_seed(0)
    cfg = ModelConfig(patch_size=32, base_width=4, **ModelConfig.LEGACY)
    model = PtychoPINN(cfg, synthetic_probe(32), 3.5)
    save_bundle(model, tmp_path / "new.zip", config={})

    def strip(doc):
        for key in ModelConfig.LEGACY:
            doc["model_config"].pop(key)

    old = rewrite_bundle(tmp_path / "new.zip", tmp_path / "old.zip", strip)
    loaded = load_bundle(old)
    assert loaded.cfg == cfg
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.predict_object(x), model.eval().predict_object(x))
    # A current-architecture bundle stripped the same way no longer fits its weights: refused, not misread.
    current = PtychoPINN(ModelConfig(patch_size=32, base_width=4), synthetic_probe(32), 3.5)
    save_bundle(current, tmp_path / "current.zip", config={})
    with pytest.raises(BundleError, match=r"x\.zip: weights do not fit the model"):
        load_bundle(rewrite_bundle(tmp_path / "current.zip", tmp_path / "x.zip", strip))


def write_legacy_bundle(model: PtychoPINN, path, config=None):
    """A format-1.0 bundle exactly as fly64-train wrote them before format 2.0: ``torch.save`` state dicts."""
    members, models = {}, []
    for name, state in {"diffraction_to_obj": model.cnn.state_dict(),
                        "forward_model": {k: v for k, v in model.state_dict().items()
                                          if not k.startswith("cnn.")}}.items():
        buf = io.BytesIO()
        torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, buf)
        data = buf.getvalue()
        members[f"models/{name}.pt"] = data
        models.append({"name": name, "file": f"models/{name}.pt", "sha256": hashlib.sha256(data).hexdigest(),
                       "size_bytes": len(data), "n_tensors": len(state),
                       "n_parameters": int(sum(t.numel() for t in state.values()))})
    manifest = {"format": "fly64-pinn-bundle", "format_version": "1.0", "backend": "torch",
                "backend_version": "2.13.0", "producer": {"package": "fly64-train", "version": "0.1.0"},
                "models": models, "N": model.cfg.patch_size, "gridsize": model.cfg.gridsize,
                "intensity_scale": float(model.intensity_scale), "model_config": model.cfg.to_dict(),
                "config": config or {}, "provenance": {}}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_a_format_1_bundle_written_the_old_way_still_loads(tmp_path):
    torch.manual_seed(1)
    model = PtychoPINN(ModelConfig(patch_size=32, base_width=4, gridsize=2), synthetic_probe(32), 2.5)
    path = write_legacy_bundle(model, tmp_path / "old.zip", config={"neighbor_count": 7})
    assert read_manifest(path).format_version == "1.0"
    loaded = load_bundle(path)
    x = torch.rand(2, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.predict_object(x), model.eval().predict_object(x))
    # Through the framework-free door too: numpy in, numpy out.
    from fly64_train import load_bundle as load_any

    generic = load_any(path)
    assert generic.gridsize == 2 and generic.patch_size == 32
    assert np.array_equal(generic.predict_object(x.numpy()), model.predict_object(x).detach().numpy())


def test_a_format_2_weight_file_holds_no_pickle_opcodes(bundle):
    _, path, _ = bundle
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        for entry in manifest["models"]:
            data = zf.read(entry["file"])
            # safetensors: 8-byte little-endian header length, then a JSON header.
            header_len = int.from_bytes(data[:8], "little")
            assert json.loads(data[8:8 + header_len])
            assert b"\x80\x02" not in data[:2] and not data.startswith(b"PK")  # neither pickle nor torch's zip
            with pytest.raises(ValueError):
                list(pickletools.genops(io.BytesIO(data)))


def test_the_same_model_gives_the_same_bundle_bytes(tmp_path):
    torch.manual_seed(3)
    model = PtychoPINN(ModelConfig(patch_size=32, base_width=4), synthetic_probe(32), 3.5)
    a = save_bundle(model, tmp_path / "a.zip", config={"x": 1})
    b = save_bundle(model, tmp_path / "b.zip", config={"x": 1})
    assert a["sha256"] == b["sha256"] and (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
