"""Hostile TensorFlow job folders (issue 20): Keras' callbacks never write through a planted link,
and a resume of other settings is refused, as with the torch backend."""

from __future__ import annotations

import csv

import pytest

from fly64_train.core.seam import get_backend
from fly64_train.training.job_folder import ResumeMismatch


def _tf(make_config, npz, job_dir, **kw):
    return make_config(npz, job_dir, 1, **{"backend": "tensorflow", "n_groups": 24, "val_fraction": 0.05, **kw})


@pytest.mark.slow  # about 20 s of Keras start-up and three tiny trainings
def test_keras_checkpoint_and_csv_log_replace_a_link_never_write_through_it(tmp_path, tiny_npz, make_config):
    outside = tmp_path / "outside.txt"
    outside.write_text("years of work")
    job = tmp_path / "job"
    (job / "checkpoints").mkdir(parents=True)
    (job / "logs").mkdir()
    (job / "checkpoints" / "best.weights.h5").symlink_to(outside)
    (job / "logs" / "metrics.csv").symlink_to(outside)
    result = get_backend("tensorflow").train(_tf(make_config, tiny_npz, job, max_epochs=2, resume=False))
    assert outside.read_text() == "years of work"
    assert not (job / "checkpoints" / "best.weights.h5").is_symlink()
    assert result.best_checkpoint_path == "checkpoints/best.weights.h5"
    with (job / result.log_path).open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["epoch"] for r in rows] == ["0", "1"] and all(r["loss"] for r in rows)

    # A resume of the same job keeps the earlier rows; with another learning rate it is refused.
    with pytest.raises(ResumeMismatch, match="lr 0.001 -> 0.5.*use --no-resume"):
        get_backend("tensorflow").train(_tf(make_config, tiny_npz, job, max_epochs=3, lr=0.5))
    again = get_backend("tensorflow").train(_tf(make_config, tiny_npz, job, max_epochs=3))
    assert again.resumed_from == "checkpoints/last.weights.h5"
    with (job / again.log_path).open() as fh:
        assert [r["epoch"] for r in csv.DictReader(fh)] == ["0", "1", "2"]
