"""Per-scan refinement ("PINN + refine"): a real tiny bundle fine-tuned on its test split's own patterns."""

from __future__ import annotations

import math

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from fly64_manifest import load_schema
from fly64_train.evaluation.evaluate import EvaluationConfig, evaluate_job
from fly64_train.evaluation.refine import RefineConfig


def _metrics_schema() -> Draft202012Validator:
    schema = load_schema("training_manifest")
    return Draft202012Validator({**schema["$defs"]["metrics"], "$defs": schema["$defs"]})


def test_refinement_is_recorded_as_its_own_method_and_recovers_more_information_than_plain_prediction(
        trained, tmp_path):
    bundle, test, _ = trained
    before = bundle.read_bytes()
    cfg = EvaluationConfig(batch_size=8, device="cpu", refine=RefineConfig(steps=30, lr=1e-3))
    metrics = evaluate_job(bundle, test, tmp_path, cfg)
    _metrics_schema().validate(metrics)
    refined = metrics["refine"]
    # Its own scores, settings and time beside plain prediction's; the split of the loss is the bundle's.
    assert refined["refine"] == {"steps": 30, "lr": 1e-3, "batch_size": None, "count_split": 0.5, "seed": 0}
    assert 0 < refined["reconstruction"]["refine_s"] <= refined["reconstruction"]["wall_s"] < 60
    assert refined["reconstruction"]["n_patterns"] == metrics["reconstruction"]["n_patterns"]
    assert refined["amplitude"] != metrics["amplitude"]
    # Fine-tuned on half A of the test photons and scored on half B, a one-epoch model recovers more
    # of what the data says (measured: info -4.06 plain, -1.05 refined); the bundle is not changed.
    assert refined["information"]["info"] > metrics["information"]["info"] + 1.0
    assert refined["information"]["patterns"] == metrics["information"]["patterns"]
    assert bundle.read_bytes() == before
    # Plain prediction is the same with and without refinement asked for (the copy is refined, not the model).
    plain = evaluate_job(bundle, test, tmp_path, EvaluationConfig(batch_size=8, device="cpu"))
    assert "refine" not in plain
    assert plain["amplitude"] == metrics["amplitude"] and plain["information"] == metrics["information"]
    # Deterministic on CPU: the same settings give the same refined scores.
    again = evaluate_job(bundle, test, tmp_path, cfg)["refine"]
    assert again["amplitude"] == refined["amplitude"] and again["information"] == refined["information"]


def test_the_half_a_refinement_fits_exactly_half_a_counts_and_never_half_b(trained):
    # refine_on_half_a feeds sqrt(k_A / f) / s under the scale s * sqrt(f): the counts its loss sees are k_A.
    from fly64_data.contract import read_metadata
    from fly64_train.core.physics import counts_of
    from fly64_train.data.reader import open_dataset
    from fly64_train.evaluation.information import _Halves

    _, test, _ = trained
    info = open_dataset(test, 1, 7)
    halves = _Halves(info, 0.5)
    rows = np.arange(info.n)
    counts_a, counts_b = halves(rows)
    scale = read_metadata(test)["intensity_scale"]
    seen_counts = np.round(counts_of(halves.seen(rows).astype(np.float64), scale * math.sqrt(0.5)))
    np.testing.assert_array_equal(seen_counts, counts_a)
    assert (counts_b > 0).any() and not np.array_equal(counts_a, counts_a + counts_b)


def test_refine_settings_out_of_range_are_refused_naming_the_field():
    for bad, word in ((RefineConfig(steps=-1), "steps"), (RefineConfig(lr=0.0), "lr"),
                      (RefineConfig(lr=math.inf), "lr"), (RefineConfig(batch_size=0), "batch_size"),
                      (RefineConfig(count_split=1.0), "count_split"), (RefineConfig(seed=-2), "seed")):
        with pytest.raises(ValueError, match=word):
            EvaluationConfig(refine=bad).check()


@pytest.mark.parametrize("flag,value", [("--refine-steps", "-1"), ("--refine-steps", "1.5"), ("--refine-lr", "0"),
                                        ("--refine-lr", "nan")])
def test_evaluate_refuses_a_bad_refine_flag_with_one_usage_line(flag, value, tmp_path, capsys):
    from fly64_train.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--artifact-root", str(tmp_path), flag, value])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and flag in err and len(err.splitlines()) == 1
