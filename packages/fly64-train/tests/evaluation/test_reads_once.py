"""One evaluation reads each input once: the test split is opened once and the bundle once.

Real files, a real (tiny) trained bundle and a real evaluation with every step on (information score,
per-scan refinement, product): ``zipfile.ZipFile`` (what an NPZ reader, ``np.load`` and the bundle
container all open) is wrapped by a counting subclass that passes every call through.
"""

from __future__ import annotations

import os
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from fly64_train.evaluation.evaluate import EvaluationConfig, evaluate_job
from fly64_train.evaluation.refine import RefineConfig


@pytest.fixture
def zip_opens(monkeypatch) -> Counter:
    """Resolved path -> how many times a ``zipfile.ZipFile`` was opened on it while the test runs."""
    opens: Counter = Counter()

    class CountingZipFile(zipfile.ZipFile):
        def __init__(self, file, *args, **kwargs):
            name = file if isinstance(file, (str, os.PathLike)) else getattr(file, "name", None)
            if isinstance(name, (str, os.PathLike)):
                opens[Path(name).resolve()] += 1
            super().__init__(file, *args, **kwargs)

    monkeypatch.setattr(zipfile, "ZipFile", CountingZipFile)
    return opens


def test_one_evaluation_opens_the_test_split_once_and_the_bundle_once(trained, tmp_path, zip_opens):
    bundle, test, _ = trained
    cfg = EvaluationConfig(batch_size=8, device="cpu", information=True, refine=RefineConfig(steps=2))
    metrics = evaluate_job(bundle, test, tmp_path, cfg, title="reads")
    assert "information" in metrics and "information" in metrics["refine"]  # every step that reads ran
    assert (tmp_path / "reconstruction.h5").is_file()
    assert zip_opens[Path(test).resolve()] == 1
    assert zip_opens[Path(bundle).resolve()] == 1
