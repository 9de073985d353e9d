"""One study run reads each producer manifest once and hashes each training file once.

A real tiny run (Phase C and D written by their CLIs; dose 1000: baseline gs1 and gs2, which share one training
file, and dense gs2; one epoch each; the default in-process executor); the readers are wrapped at their module
boundary by counting passthroughs.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import fly64_manifest.io
import fly64_train.studies.inputs as inputs
import fly64_train.training.digest as digest
from fly64_train.cli import main as train_main

TINY_TRAIN = ["--max-epochs", "1", "--n-groups", "8", "--batch-size", "4", "--base-width", "4", "--deterministic",
              "--no-evaluate"]


def test_a_run_reads_each_producer_manifest_once_and_hashes_each_training_file_once(
        tiny_study_data, tmp_path, monkeypatch):
    manifests_read: Counter = Counter()
    hashed: Counter = Counter()
    real_read, real_path = inputs.read_manifest, fly64_manifest.io.Path

    def counting_read(loader, path):
        manifests_read[Path(path).name] += 1
        return real_read(loader, path)

    def counting_path(path):
        # fly64_manifest.io names Path when it hashes a file (sha256_file) and when it writes one.
        hashed[real_path(path).resolve()] += 1
        return real_path(path)

    # Digests are kept per process: forget those earlier tests of this session computed.
    digest._digest.cache_clear()
    monkeypatch.setattr(inputs, "read_manifest", counting_read)
    monkeypatch.setattr(fly64_manifest.io, "Path", counting_path)
    artifact = tmp_path / "e"
    assert train_main(["run", "--phase-c-root", str(tiny_study_data / "phase_c"), "--phase-d-root",
                       str(tiny_study_data / "phase_d"), "--artifact-root", str(artifact), "--dose", "1000",
                       "--view", "baseline", "dense", *TINY_TRAIN]) == 0
    assert manifests_read == {"run_manifest.json": 1, "overlap_manifest.json": 1}
    inputs_hashed = {path: count for path, count in hashed.items() if path.suffix == ".npz"}
    assert len([path for path in inputs_hashed if "train" in path.name]) == 2, inputs_hashed
    assert set(inputs_hashed.values()) == {1}, inputs_hashed  # each training (and test) file hashed once
