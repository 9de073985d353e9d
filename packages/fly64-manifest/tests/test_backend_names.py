"""One list of backend names, one spelling each; training manifests with the old ``pytorch`` still read as torch."""

from __future__ import annotations

import copy

import pytest

from fly64_manifest import BACKENDS, DEFAULT_BACKEND, ManifestError, backend_name, load_training_manifest, validate
from fly64_manifest.io import read_json
from fly64_manifest.schema import write_json


def test_the_names_and_the_old_spelling():
    assert BACKENDS == ("torch", "tensorflow") and DEFAULT_BACKEND == "torch"
    assert [backend_name(s) for s in ("torch", "pytorch", "tensorflow")] == ["torch", "torch", "tensorflow"]
    with pytest.raises(ValueError, match="unknown backend 'jax'"):
        backend_name("jax")


def test_a_training_manifest_with_the_old_spelling_reads_as_torch(tiny_study):
    path = tiny_study / "phase_e" / "training_manifest.json"
    doc = read_json(path)
    doc["backend"] = "pytorch"
    for job in doc["jobs"]:
        job["backend"] = "pytorch"
    write_json(path, doc, "training_manifest")
    manifest = load_training_manifest(path)
    assert manifest.backend == "torch" and {job.backend for job in manifest.jobs} == {"torch"}


def test_the_schema_takes_the_name_and_refuses_an_unknown_backend(tiny_study):
    doc = read_json(tiny_study / "phase_e" / "training_manifest.json")
    for spelling in BACKENDS:
        validate({**doc, "backend": spelling}, "training_manifest")
    bad = copy.deepcopy(doc)
    bad["jobs"][0]["backend"] = "jax"
    with pytest.raises(ManifestError, match="backend"):
        validate(bad, "training_manifest")
