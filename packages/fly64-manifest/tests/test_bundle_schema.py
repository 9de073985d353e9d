"""The bundle manifest schema: format 2.0 (safetensors / .weights.h5, size_bytes required) and 1.x."""

import pytest

from fly64_manifest import ManifestError, validate


def _bundle(version="2.0", ext=".safetensors", **entry):
    model = {"name": "diffraction_to_obj", "file": f"models/diffraction_to_obj{ext}", "sha256": "a" * 64,
             "size_bytes": 100, **entry}
    return {"format": "fly64-pinn-bundle", "format_version": version, "backend": "torch", "models": [model],
            "N": 32, "gridsize": 1, "intensity_scale": 2.0, "config": {}}


@pytest.mark.parametrize("version, ext", [("2.0", ".safetensors"), ("2.0", ".weights.h5"), ("1.0", ".pt"),
                                          ("1.3", ".pt")])
def test_format_2_and_1_bundles_validate(version, ext):
    validate(_bundle(version, ext), "bundle_manifest")


def test_format_1_may_omit_sizes_but_format_2_may_not():
    old = _bundle("1.0", ".pt")
    del old["models"][0]["size_bytes"]
    validate(old, "bundle_manifest")
    new = _bundle()
    del new["models"][0]["size_bytes"]
    with pytest.raises(ManifestError, match="size_bytes"):
        validate(new, "bundle_manifest")


@pytest.mark.parametrize("doc", [_bundle("3.0"), _bundle("2.0", ".pt"), _bundle(file="../../x.safetensors"),
                                 _bundle(file="/abs.safetensors"), _bundle(size_bytes=-1)])
def test_bad_bundle_manifests_are_refused(doc):
    with pytest.raises(ManifestError):
        validate(doc, "bundle_manifest")
