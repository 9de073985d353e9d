"""The one trained bundle the evaluation tests score (each test module trains its own copy)."""

from __future__ import annotations

import numpy as np
import pytest

from ..conftest import write_npz


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_sim, tiny_npz):
    """A real bundle trained for one epoch on the tiny set, and the other half of the scan as test split.

    Module-scoped so that a module that tampers with a copy never shares state with another module.
    Returns ``(bundle path, test split path, job folder)``.
    """
    from fly64_train.backends.torch.train import train_job
    from fly64_train.training.config import TrainConfig
    from fly64_train.training.model_config import ModelConfig
    from fly64_train.training.torch_options import TorchOptions

    root = tmp_path_factory.mktemp("trained")
    test_rows = np.flatnonzero(tiny_sim["y"] >= np.median(tiny_sim["y"]) + 1)
    test = write_npz(root / "patched_test.npz", tiny_sim, test_rows)
    job_dir = root / "job"
    cfg = TrainConfig(train_path=str(tiny_npz), job_dir=str(job_dir), max_epochs=1, n_groups=8, batch_size=4,
                      model=ModelConfig(base_width=4), deterministic=True, logger="none", progress_bar=False,
                      torch=TorchOptions(accelerator="cpu", devices=1))
    return job_dir / train_job(cfg).bundle_path, test, job_dir
