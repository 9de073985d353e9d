"""A TensorFlow job's own state is checked like any input, and its time cap never exports an untrained
model (issue 20).

The resume record (``checkpoints/last.json``):

Each hostile record is refused in one line naming the file and the key, before Keras sees it:
``epochs_completed`` -5 was a graph-execution traceback, a NaN ``best_loss`` silently froze the
exported epoch, and 100,000 levels of nesting were a RecursionError.
"""

from __future__ import annotations

import json

import pytest

from fly64_train.backends.tensorflow.train import LAST_STATE, LAST_WEIGHTS, _read_resume_state
from fly64_train.backends.tensorflow.weights import WeightsError

GOOD = {"epoch": 0, "epochs_completed": 1, "global_step": 6, "loss": -5.2, "monitor": "val_loss",
        "best_loss": -5.5, "plateau": {"best": -5.5, "wait": 0, "cooldown_counter": 0}}

HOSTILE = {
    "epochs_completed -5": json.dumps({**GOOD, "epochs_completed": -5}),
    "epochs_completed 1.5": json.dumps({**GOOD, "epochs_completed": 1.5}),
    "epochs_completed true": json.dumps({**GOOD, "epochs_completed": True}),
    "best_loss NaN": json.dumps(GOOD).replace('"best_loss": -5.5', '"best_loss": NaN'),
    "best_loss a string": json.dumps({**GOOD, "best_loss": "-5"}),
    "plateau missing": json.dumps({k: v for k, v in GOOD.items() if k != "plateau"}),
    "plateau.wait -1": json.dumps({**GOOD, "plateau": {**GOOD["plateau"], "wait": -1}}),
    "nested 100000 deep": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "a list": "[]",
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_a_hostile_resume_record_is_refused_in_one_line(tmp_path, case):
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    (ckpt / LAST_WEIGHTS).write_bytes(b"not read: the record is refused first")
    (ckpt / LAST_STATE).write_text(HOSTILE[case])
    with pytest.raises(WeightsError) as info:
        _read_resume_state(ckpt)
    message = str(info.value)
    assert str(ckpt / LAST_STATE) in message and "\n" not in message and "--no-resume" in message


def test_the_record_keras_writes_is_accepted(tmp_path):
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    (ckpt / LAST_WEIGHTS).write_bytes(b"")
    (ckpt / LAST_STATE).write_text(json.dumps({**GOOD, "best_loss": None}))
    assert _read_resume_state(ckpt)["epochs_completed"] == 1


def test_max_time_before_the_first_epoch_exports_nothing(tiny_npz, tmp_path, capsys):
    from fly64_train.cli import main as train_main

    job = tmp_path / "job"
    # 200,000 groups of 8 per epoch: a one-second budget ends long before the first epoch does.
    code = train_main(["train-one", "--backend", "tensorflow", "--train", str(tiny_npz), "--job-dir", str(job),
                       "--n-groups", "200000", "--batch-size", "8", "--base-width", "4", "--max-time", "00:00:00:01",
                       "--no-progress", "--accelerator", "cpu"])
    assert code == 1
    err = capsys.readouterr().err
    assert "interrupted" in err and "nothing exported" in err
    assert not (job / "wts.h5.zip").exists()
