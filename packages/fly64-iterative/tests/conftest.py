"""Tiny real study data for Phase F: Phase C and D written by their own CLIs (N = 32)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

#: A high dose, so a few LSQML epochs clearly beat the flat start (dose 1e3 barely beats flat at all).
TINY_DOSE = "100000"
TINY_STUDY_DATA = ["--patch-size", "32", "--object-size", "192", "--scan-step", "8", "--dose", TINY_DOSE]


@pytest.fixture(autouse=True)
def _few_threads():
    # The machine is shared: one intra-op thread keeps parallel test workers from fighting.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_study_data(tmp_path_factory) -> Path:
    """Phase C (dose 1e5) and Phase D of a tiny study, written by the real CLIs; treat as read-only.

    Phase D keeps dense and sparse views; ``phase_d_skipping`` holds the same data with every view skipped.
    """
    from fly64_data.cli import main as data_main
    from fly64_overlap.cli import main as overlap_main

    root = tmp_path_factory.mktemp("tiny_study")
    assert data_main(["generate", "--output-root", str(root / "phase_c"), *TINY_STUDY_DATA]) == 0
    assert overlap_main(["--phase-c-root", str(root / "phase_c"), "--output-root", str(root / "phase_d")]) == 0
    assert overlap_main(["--phase-c-root", str(root / "phase_c"), "--output-root", str(root / "phase_d_skipping"),
                         "--min-positions", "100000"]) == 0
    return root
