"""The typed scorecard of a real tiny evaluation: serialised once, in the manifest's shape, read back equal."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace

import pytest
from jsonschema import Draft202012Validator

from fly64_manifest import load_schema
from fly64_manifest.scores import METRIC_NAMES, Scores
from fly64_train.evaluation.evaluate import EvaluationConfig, evaluate_job, score_job
from fly64_train.evaluation.refine import RefineConfig
from fly64_train.evaluation.scorecard import ReconstructionTime, Scorecard, metrics_json

#: Keys of the manifest's ``metrics`` object, in the order every manifest since 1.0 has recorded them.
METRICS_KEYS = ["amplitude", "phase", "frc_unit", "coverage", "region", "alignment", "floor", "reconstruction",
                "information", "refine"]
REFINE_KEYS = ["amplitude", "phase", "coverage", "refine", "reconstruction", "floor", "information"]


@pytest.fixture(scope="module")
def scored(trained, tmp_path_factory):
    """A real evaluation with the information score and a short refinement: ``(scorecard, its JSON)``."""
    bundle, test, _ = trained
    cfg = EvaluationConfig(batch_size=8, device="cpu", refine=RefineConfig(steps=3, lr=1e-3))
    card = score_job(bundle, test, tmp_path_factory.mktemp("scorecard"), cfg)
    return card, card.to_json()


def test_the_scorecard_is_typed_and_serialises_to_the_manifest_metrics_shape(scored):
    card, metrics = scored
    assert isinstance(card, Scorecard) and card.refine is not None and card.information is not None
    with pytest.raises(AttributeError):  # frozen: what the scorer made is what is written
        card.coverage = 0.5  # type: ignore[misc]
    schema = load_schema("training_manifest")
    Draft202012Validator({**schema["$defs"]["metrics"], "$defs": schema["$defs"]}).validate(metrics)
    assert list(metrics) == METRICS_KEYS and list(metrics["refine"]) == REFINE_KEYS
    assert list(metrics["reconstruction"]) == ["wall_s", "n_patterns", "device"]
    assert list(metrics["refine"]["reconstruction"]) == ["wall_s", "refine_s", "n_patterns", "device"]
    assert list(metrics["alignment"]) == ["amplitude_scale", "phase_offset_rad", "phase_ramp_rad_per_px", "shift_px"]
    assert list(metrics["amplitude"]) == list(METRIC_NAMES) and list(metrics["floor"]) == ["amplitude", "phase"]
    # Plain JSON values only (a JSON file's round trip changes nothing), rounded as manifests record them.
    assert json.loads(json.dumps(metrics, allow_nan=False)) == metrics
    assert metrics["reconstruction"]["wall_s"] == round(card.reconstruction.wall_s, 4)
    assert metrics["coverage"] == round(card.coverage, 6) and metrics["frc_unit"] == "cycles/pixel"
    assert metrics["refine"]["refine"] == {"steps": 3, "lr": 1e-3, "batch_size": None, "count_split": 0.5,
                                           "seed": 0}


def test_what_is_written_reads_back_through_the_typed_reader_with_equal_values(scored):
    card, metrics = scored
    scores = Scores.from_metrics(json.loads(json.dumps(metrics)))
    for written, read in ((card, scores), (card.refine, scores.refine)):
        for component in ("amplitude", "phase"):
            for name in METRIC_NAMES:
                value = getattr(getattr(written, component), name)
                expected = None if value is None or abs(value) == float("inf") else round(value, 6)
                assert read.metric(component, name) == pytest.approx(expected, abs=1e-12), (component, name)
                floor = getattr(getattr(written.floor, component), name)
                assert read.floor(component, name) == (None if floor is None else pytest.approx(floor, abs=1e-6))
        assert read.metric("information", "info") == pytest.approx(written.information.info, abs=1e-6)
        assert read.information.patterns == written.information.patterns
        assert read.coverage == pytest.approx(written.coverage, abs=1e-6)
        assert (read.reconstruction.wall_s, read.reconstruction.n_patterns, read.reconstruction.device) == (
            pytest.approx(written.reconstruction.wall_s, abs=1e-4), written.reconstruction.n_patterns,
            written.reconstruction.device)
    assert scores.region.row0 == card.region[0] and scores.region.col1 == card.region[3]
    assert scores.alignment.amplitude_scale == pytest.approx(card.alignment.amplitude_scale, abs=1e-6)
    assert scores.reconstruction.refine_s is None and scores.refined_with is None
    assert scores.refine.reconstruction.refine_s == pytest.approx(card.refine.reconstruction.refine_s, abs=1e-4)
    assert scores.refine.refined_with.steps == card.refine.settings.steps == 3
    assert scores.refine.refined_with.count_split == card.refine.settings.count_split


def test_the_scorecard_crosses_a_process_boundary_and_the_writers_accept_both_forms(scored):
    card, metrics = scored
    # A Dask worker returns the job's result pickled: the scorecard comes back equal.
    back = pickle.loads(pickle.dumps(card))
    assert back == card and back.to_json() == metrics
    assert metrics_json(card) == metrics and metrics_json(metrics) == metrics and metrics_json(None) is None
    assert replace(card, refine=None).to_json() == {k: v for k, v in metrics.items() if k != "refine"}


def test_a_scorecard_no_manifest_may_record_is_refused_naming_the_field(scored):
    card, _ = scored
    with pytest.raises(ValueError, match="coverage"):
        replace(card, coverage=1.5).check()
    with pytest.raises(ValueError, match="n_patterns"):
        replace(card, reconstruction=ReconstructionTime(1.0, 0, "cpu")).check()
    with pytest.raises(ValueError, match="refine_s"):
        replace(card, refine=replace(card.refine, reconstruction=ReconstructionTime(1.0, 5, "cpu"))).check()


def test_evaluate_job_is_the_serialised_scorecard_for_callers_that_write_it_straight_away(trained, tmp_path):
    bundle, test, _ = trained
    cfg = EvaluationConfig(batch_size=8, device="cpu", information=False)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    typed = score_job(bundle, test, tmp_path / "a", cfg).to_json()
    written = evaluate_job(bundle, test, tmp_path / "b", cfg)
    # Deterministic on CPU: everything but the measured wall time agrees.
    assert {k: v for k, v in written.items() if k != "reconstruction"} == {
        k: v for k, v in typed.items() if k != "reconstruction"}
    assert "information" not in written and "refine" not in written
