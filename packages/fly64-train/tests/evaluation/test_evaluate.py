"""Stitching and scoring in the object frame, and evaluation of a real (tiny) trained bundle."""

from __future__ import annotations

import json

import numpy as np
import pytest
from jsonschema import Draft202012Validator, ValidationError

from fly64_data.contract import utc_now, write_dataset
from fly64_data.physics import extract_patches
from fly64_data.sample import raster_scan, synthetic_object, synthetic_probe
from fly64_manifest import load_schema
from fly64_train.evaluation.evaluate import (
    RECONSTRUCTION_NPZ,
    RECONSTRUCTION_PNG,
    EvaluationConfig,
    bounding_box,
    coverage_mask,
    evaluate_job,
    score_stitched,
)
from fly64_train.evaluation.stitch import stitch

N = 32


def write_npz(path, sim: dict, rows: np.ndarray):
    """A DATA-001 file holding the scan positions ``rows`` of a simulated scan (conftest's ``simulate``)."""
    arrays = {"diffraction": sim["diffraction"][rows], "Y": sim["Y"][rows], "objectGuess": sim["object"],
              "probeGuess": sim["probe"], "xcoords": sim["x"][rows].astype(np.float64),
              "ycoords": sim["y"][rows].astype(np.float64), "scan_index": rows.astype(np.int64)}
    meta = {"schema_version": "1.0", "created": utc_now(), "producer": {"package": "tests", "version": "0"},
            "dose": 1e4, "measured_mean_counts": 1e4, "intensity_scale": sim["scale"],
            "N": int(sim["probe"].shape[0]), "seeds": {"simulation": 7}, "sources": [], "data_transformations": []}
    return write_dataset(path, arrays, meta)


def _weight(probe: np.ndarray) -> np.ndarray:
    """The evaluation's stitching weight: probe intensity on the model's central N/2 support."""
    support = np.zeros((N, N))
    support[N // 4:3 * N // 4, N // 4:3 * N // 4] = 1
    return np.abs(probe).astype(np.float64) ** 2 * support


def _cut_and_stitch(step: float, integer: bool = False) -> tuple[np.ndarray, ...]:
    obj = synthetic_object(160, 5)
    probe = synthetic_probe(N)
    x, y = raster_scan(obj.shape, N, step, 5)  # jittered: sub-pixel positions
    if integer:
        x, y = np.round(x), np.round(y)
    patches = extract_patches(obj, y, x, N)
    weight = _weight(probe)
    image, summed = stitch(patches * (weight > 0), y, x, obj.shape, weight)
    return obj, image, summed, weight, np.column_stack([y, x])


def test_patches_cut_from_a_known_object_stitch_back_to_it_on_the_covered_region():
    obj, image, summed, weight, _ = _cut_and_stitch(step=6.0, integer=True)
    covered = coverage_mask(summed, weight.max())
    r0, r1, c0, c1 = bounding_box(covered)
    # A dense scan lights its bounding box except the rounded corners of the round probe footprints.
    assert covered[r0:r1, c0:c1].mean() > 0.9
    # Whole-pixel positions: cutting and stitching are exact, so is the round trip.
    assert np.abs(image[covered] - obj[covered]).max() < 1e-5


def test_sub_pixel_positions_stitch_back_to_within_interpolation_blur():
    obj, image, summed, weight, _ = _cut_and_stitch(step=6.0)
    covered = coverage_mask(summed, weight.max())
    r0, r1, c0, c1 = bounding_box(covered)
    # Bilinear cut then bilinear placement smooths twice: small errors, largest at sharp features.
    err = np.abs(image[covered] - obj[covered])
    assert np.median(err) < 0.01 and np.quantile(err, 0.99) < 0.05
    # And it scores nearly perfectly through the evaluation's crop/align/score path.
    ev = score_stitched(image, summed, obj, weight.max())
    assert ev.region == (r0, r1, c0, c1)
    # (not 1: bilinear cut-and-place blurs sharp features a little)
    assert ev.amplitude_scores.ssim > 0.95 and ev.phase_scores.ssim > 0.95 and ev.coverage > 0.9
    assert ev.amplitude_scale == pytest.approx(1.0, abs=1e-3)
    assert max(abs(s) for s in ev.shift_px) < 0.2
    # A flat object aligned the same way scores far lower: the floor is informative, not a formality.
    floor = ev.metrics()["floor"]
    assert floor["phase"]["ssim"] < ev.phase_scores.ssim - 0.3 and floor["amplitude"]["pearson"] == 0.0


def test_a_sparse_scan_leaves_gaps_that_are_counted_but_never_scored():
    obj, image, summed, weight, _ = _cut_and_stitch(step=24.0, integer=True)
    ev = score_stitched(image, summed, obj, weight.max())
    assert 0.2 < ev.coverage < 0.95
    assert ev.metrics()["coverage"] == pytest.approx(ev.coverage, abs=1e-6)
    gaps = ~ev.covered
    # The saved arrays show gaps as the flat guess (mean of covered values), never ground truth ...
    assert np.ptp(ev.amplitude[gaps]) == 0 and np.ptp(ev.phase[gaps]) == 0
    # ... but no score sees them: an exact stitch of the lit pixels scores as perfectly as a dense one,
    # with no penalty for the seams between lit footprints and the fill.
    assert ev.amplitude_scores.ssim == pytest.approx(1.0, abs=1e-6)
    assert ev.phase_scores.ssim == pytest.approx(1.0, abs=1e-6)
    assert ev.amplitude_scores.frc50 is None and ev.amplitude_scores.pearson == pytest.approx(1.0, abs=1e-9)
    # Whatever the stitcher left in the unlit pixels, the scores are the same.
    noisy_gaps = np.where(summed > 0, image, 0.0) + np.where(summed > 0, 0, 5.0)
    again = score_stitched(noisy_gaps, summed, obj, weight.max())
    assert again.metrics()["amplitude"] == ev.metrics()["amplitude"]
    # The flat floor is scored on the same pixels and stays far below.
    assert ev.metrics()["floor"]["amplitude"]["ssim"] < 0.9


def test_scale_offset_and_ramp_of_a_stitched_object_do_not_change_its_scores():
    obj, image, summed, weight, _ = _cut_and_stitch(step=6.0)
    rows, cols = np.mgrid[: obj.shape[0], : obj.shape[1]]
    distorted = 2.7 * image * np.exp(1j * (1.1 + 0.03 * rows - 0.05 * cols))
    base = score_stitched(image, summed, obj, weight.max())
    moved = score_stitched(distorted, summed, obj, weight.max())
    for name in ("mae", "ssim", "ms_ssim", "pearson", "psnr"):
        assert getattr(moved.amplitude_scores, name) == pytest.approx(getattr(base.amplitude_scores, name), rel=1e-6)
        assert getattr(moved.phase_scores, name) == pytest.approx(getattr(base.phase_scores, name), rel=1e-5)


def test_evaluate_job_scores_a_trained_bundle_and_writes_its_figure_and_arrays(trained):
    bundle, test, job_dir = trained
    metrics = evaluate_job(bundle, test, job_dir, EvaluationConfig(batch_size=3), title="tiny")
    schema = load_schema("training_manifest")
    metrics_schema = {**schema["$defs"]["metrics"], "$defs": schema["$defs"]}
    Draft202012Validator(metrics_schema).validate(metrics)
    json.dumps(metrics, allow_nan=False)
    for component in ("amplitude", "phase"):
        values = metrics[component]
        assert set(values) == {"mae", "psnr", "ssim", "ms_ssim", "frc50", "frc_1_7", "pearson"}
        for name in ("mae", "psnr", "ssim", "ms_ssim", "pearson"):
            assert np.isfinite(values[name])
        assert -1 <= values["ssim"] < 1 and 0 <= values["ms_ssim"] < 1
    assert metrics["frc_unit"] == "cycles/pixel" and 0 < metrics["coverage"] <= 1
    assert (job_dir / RECONSTRUCTION_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with np.load(job_dir / RECONSTRUCTION_NPZ, allow_pickle=False) as data:
        r0, r1, c0, c1 = data["region"]
        assert data["amplitude"].shape == data["phase_true"].shape == (r1 - r0, c1 - c0)
        assert data["frc_frequency"].shape == data["frc_amplitude"].shape == data["frc_phase"].shape
    # Deterministic: a second evaluation gives the same numbers (all but the wall time) ...
    again = evaluate_job(bundle, test, job_dir, EvaluationConfig(batch_size=3))
    assert {k: v for k, v in again.items() if k != "reconstruction"} == {
        k: v for k, v in metrics.items() if k != "reconstruction"}
    # ... and another batch size changes them at most by float32 rounding in the convolutions.
    other = evaluate_job(bundle, test, job_dir, EvaluationConfig(batch_size=5))
    for component in ("amplitude", "phase"):
        for name, value in metrics[component].items():
            assert other[component][name] == pytest.approx(value, abs=1e-4, rel=1e-4), (component, name)


def test_evaluation_records_the_wall_time_of_predict_and_stitch_with_its_pattern_count_and_device(trained, tmp_path):
    # Phase G compares methods by reconstruction time per 1,000 patterns on the device each ran on.
    bundle, test, _ = trained
    metrics = evaluate_job(bundle, test, tmp_path, EvaluationConfig(batch_size=3, device="cpu"))
    timing = metrics["reconstruction"]
    with np.load(test, allow_pickle=False) as data:
        assert timing["n_patterns"] == data["xcoords"].shape[0] > 0
    assert 0 < timing["wall_s"] < 60 and timing["device"] == "cpu"
    schema = load_schema("training_manifest")
    Draft202012Validator({**schema["$defs"]["metrics"], "$defs": schema["$defs"]}).validate(metrics)
    with pytest.raises(ValidationError):
        Draft202012Validator({**schema["$defs"]["metrics"], "$defs": schema["$defs"]}).validate(
            {**metrics, "reconstruction": {**timing, "wall_s": -1}})


def test_evaluation_records_the_information_score_of_a_prediction_from_half_the_photons(trained, tmp_path):
    from fly64_train.bundle import load_bundle
    from fly64_train.evaluation.information import model_information

    bundle, test, _ = trained
    metrics = evaluate_job(bundle, test, tmp_path, EvaluationConfig(batch_size=3, device="cpu"))
    info = metrics["information"]
    schema = load_schema("training_manifest")
    Draft202012Validator({**schema["$defs"]["metrics"], "$defs": schema["$defs"]}).validate(metrics)
    with np.load(test, allow_pickle=False) as data:
        assert info["patterns"] == data["xcoords"].shape[0]
    # The truth beats the flat object on the held-out half; a one-epoch model recovers less than the truth.
    assert info["nll_gap_truth_per_pattern"] > 0 and info["info"] < 1
    # It is the model's score from half A (the same numbers as scoring the loaded model directly) ...
    direct = model_information(load_bundle(bundle, device="cpu"), test, neighbor_count=7, grouping_seed=123,
                               batch_size=3)
    assert direct.as_json() == info
    # ... and it can be switched off.
    assert "information" not in evaluate_job(bundle, test, tmp_path,
                                             EvaluationConfig(batch_size=3, device="cpu", information=False))


def test_the_models_information_score_read_in_chunks_equals_the_score_of_the_whole_arrays(trained):
    from fly64_data.contract import read_metadata
    from fly64_train.bundle import load_bundle
    from fly64_train.evaluation.information import STITCH_WEIGHT_CUT, model_information
    from fly64_train.evaluation.metrics import information_score, split_counts
    from fly64_train.evaluation.predict import predict_patches

    bundle, test, _ = trained
    model = load_bundle(bundle, device="cpu")
    scale = read_metadata(test)["intensity_scale"]
    with np.load(test, allow_pickle=False) as data:
        arrays = {k: data[k] for k in ("diffraction", "scan_index", "objectGuess", "probeGuess", "xcoords",
                                       "ycoords")}
    # The reference: halves A and B whole, the model fed A on the full pattern's scale, the stitched
    # object (nothing where the stitch has no weight) scored on B.
    a, b = split_counts(arrays["diffraction"], scale, keys=arrays["scan_index"])
    seen = (np.sqrt(a / 0.5) / scale).astype(np.float32)
    predicted = predict_patches(model, test, neighbor_count=7, grouping_seed=123, batch_size=3, patterns=seen)
    weight = np.abs(arrays["probeGuess"]).astype(np.float64) ** 2 * model.support()
    image, summed = model.stitch(predicted.patches, predicted.ycoords, predicted.xcoords,
                                 arrays["objectGuess"].shape, weight)
    recon = np.where(summed > STITCH_WEIGHT_CUT * summed.max(), image, np.nan)
    reference = information_score(recon, arrays["objectGuess"], a, b, probe=arrays["probeGuess"],
                                  ycoords=arrays["ycoords"], xcoords=arrays["xcoords"], intensity_scale=scale)
    chunked = model_information(model, test, neighbor_count=7, grouping_seed=123, batch_size=3, chunk=5)
    assert chunked.patterns == reference.patterns > 5  # several chunks
    assert chunked.flat_amplitude == pytest.approx(reference.flat_amplitude, rel=1e-12)
    for name in ("nll_recon", "nll_flat", "nll_truth"):
        assert getattr(chunked, name) == pytest.approx(getattr(reference, name), rel=1e-10), name
    assert chunked.info == pytest.approx(reference.info, abs=1e-6)


def test_evaluate_bundle_scores_plain_prediction_and_refuses_a_config_asking_for_more(trained, tmp_path):
    from fly64_train.evaluation.evaluate import evaluate_bundle
    from fly64_train.evaluation.refine import RefineConfig

    bundle, test, _ = trained
    plain = evaluate_bundle(bundle, test, EvaluationConfig(batch_size=3, device="cpu", information=False))
    card = plain.scorecard()
    assert card.information is None and card.refine is None and np.isfinite(card.amplitude.ssim)
    missing = tmp_path / "no_such_bundle.zip"  # refused before anything is read: no file error
    for cfg, setting in ((EvaluationConfig(device="cpu"), "information=True"),
                         (EvaluationConfig(information=False, refine=RefineConfig(steps=5)), "refine.steps=5")):
        with pytest.raises(ValueError, match=rf"asks for {setting}: .*use score_job/evaluate_job") as exc:
            evaluate_bundle(missing, test, cfg)
        assert "\n" not in str(exc.value)


def test_evaluating_a_damaged_bundle_names_it(trained, tmp_path):
    from fly64_train.backends.torch.bundle import BundleError

    bundle, test, _ = trained
    broken = tmp_path / "wts.h5.zip"
    broken.write_bytes(bundle.read_bytes()[:300])
    with pytest.raises(BundleError, match="wts.h5.zip"):
        evaluate_job(broken, test, tmp_path)
    assert not (tmp_path / RECONSTRUCTION_NPZ).exists()


def test_a_bundle_whose_bytes_differ_from_the_recorded_digest_is_not_evaluated(trained, tmp_path):
    from fly64_train.bundle import BundleError

    bundle, test, _ = trained
    with pytest.raises(BundleError, match=r"wts\.h5\.zip: sha256 [0-9a-f]{64} does not match the expected"):
        evaluate_job(bundle, test, tmp_path, expected_sha256="f" * 64)
    assert not (tmp_path / RECONSTRUCTION_NPZ).exists()


def test_evaluation_imports_no_framework():
    import subprocess
    import sys

    code = ("import sys\n"
            "import fly64_train.evaluation.evaluate, fly64_train.evaluation.predict, fly64_train.evaluation.stitch\n"
            "import fly64_train.evaluation.metrics, fly64_train.evaluation.figures, fly64_train.bundle\n"
            "print(sorted(m for m in ('torch', 'lightning', 'tensorflow', 'keras') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
