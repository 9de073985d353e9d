"""Shared fixtures: a small but real Phase C sweep written by the real CLI."""

from __future__ import annotations

import pytest

from fly64_data.cli import main

SMALL = ["--patch-size", "32", "--object-size", "192", "--scan-step", "8"]


@pytest.fixture(scope="session")
def small_sweep(tmp_path_factory):
    """A three-dose sweep at N = 32 (a few hundred positions), generated once per session."""
    root = tmp_path_factory.mktemp("phase_c")
    assert main(["generate", "--output-root", str(root), *SMALL]) == 0
    return root
