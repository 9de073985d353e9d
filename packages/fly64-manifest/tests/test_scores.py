"""The typed view of a job's recorded metrics (fly64_manifest.scores)."""

from __future__ import annotations

import pytest

from fly64_manifest.scores import Alignment, Region, Scores

#: A metrics object in the shape fly64-train's evaluation records (values from a tiny run).
RECORDED = {
    "amplitude": {"mae": 0.05, "psnr": 21.5, "ssim": 0.61, "ms_ssim": 0.7, "frc50": 0.12, "frc_1_7": None,
                  "pearson": 0.8},
    "phase": {"mae": 0.2, "psnr": 18.0, "ssim": 0.42, "ms_ssim": 0.5, "frc50": None, "frc_1_7": 0.2,
              "pearson": 0.66},
    "frc_unit": "cycles/pixel", "coverage": 0.93,
    "region": {"row0": 3, "row1": 40, "col0": 5, "col1": 60},
    "alignment": {"amplitude_scale": 1.7, "phase_offset_rad": -0.3, "phase_ramp_rad_per_px": [0.001, -0.002],
                  "shift_px": [0.0, 0.1]},
    "floor": {"amplitude": {"ssim": 0.1, "pearson": 0.0}, "phase": {"ssim": 0.05, "pearson": 0.02}},
    "reconstruction": {"wall_s": 2.5, "n_patterns": 500, "device": "cuda:0"},
    "information": {"info": 0.4, "nll_gap_truth_per_pattern": 2.0, "nll_gap_recon_per_pattern": 0.8,
                    "flat_amplitude": 0.8, "patterns": 500},
}


def test_recorded_metrics_read_as_typed_scores_with_floor_region_alignment_timing_and_information():
    scores = Scores.from_metrics(RECORDED)
    assert scores.metric("phase", "ssim") == 0.42 and scores.metric("amplitude", "frc_1_7") is None
    assert scores.floor("phase", "ssim") == 0.05 and scores.floor("amplitude", "psnr") is None
    assert scores.region == Region(3, 40, 5, 60) and scores.region.shape == (37, 55)
    assert scores.alignment == Alignment(1.7, -0.3, (0.001, -0.002))
    assert scores.coverage == 0.93
    assert scores.reconstruction.device == "cuda:0"
    assert scores.reconstruction.seconds_per_1000_patterns == pytest.approx(5.0)
    assert scores.metric("information", "info") == 0.4 and scores.floor("information", "info") == 0.0


def test_missing_or_mistyped_parts_read_as_none_never_as_an_exception():
    assert Scores.from_metrics(None) is None
    odd = {"amplitude": {"ssim": "high", "psnr": True}, "floor": [1, 2], "region": {"row0": 5, "row1": 2},
           "alignment": {"amplitude_scale": 1.0}, "reconstruction": {"wall_s": 1.0, "n_patterns": 0, "device": "cpu"},
           "information": "yes"}
    scores = Scores.from_metrics(odd)
    assert scores.metric("amplitude", "ssim") is None and scores.metric("amplitude", "psnr") is None
    assert scores.metric("phase", "ssim") is None and scores.floor("phase", "ssim") is None
    assert (scores.region, scores.alignment, scores.reconstruction, scores.information) == (None,) * 4
    assert scores.metric("information", "info") is None and scores.floor("information", "info") is None


def test_an_unknown_component_or_metric_is_named():
    scores = Scores.from_metrics(RECORDED)
    with pytest.raises(KeyError, match="unknown component 'ampl'"):
        scores.metric("ampl", "ssim")
    with pytest.raises(KeyError, match="unknown metric 'sim'"):
        scores.metric("phase", "sim")


def test_both_phases_jobs_expose_typed_scores_timing_and_their_product(tiny_study):
    import hashlib

    from fly64_manifest import load_iterative_manifest, load_training_manifest, read_json, write_json

    pinn = load_training_manifest(tiny_study).job(1000, "dense")
    assert pinn.scores.metric("phase", "ssim") == pinn.metric("phase", "ssim") is not None
    assert pinn.seconds_per_1000_patterns is None  # a 1.0 manifest records no reconstruction time
    assert pinn.artifact("reconstruction.h5") is None
    # A Phase F job records its wall time on the job; its typed scores carry it as the timing.
    training = read_json(tiny_study / "phase_e" / "training_manifest.json")
    tj = next(j for j in training["jobs"] if j["dose"] == 1000 and j["view"] == "dense")
    job_dir = tiny_study / "phase_f" / tj["job_dir"]
    job_dir.mkdir(parents=True)
    (job_dir / "reconstruction.h5").write_bytes(b"h5")
    digest = hashlib.sha256(b"h5").hexdigest()
    job = {k: tj[k] for k in ("dose", "view", "gridsize", "job_dir", "data_root", "test_data_path")}
    job.update(status="success", error=None, engine="lsqml", engine_options={}, epochs=5, batch_size=8,
               noise_model="poisson", device="cuda:0", device_name="NVIDIA H200", wall_time_s=3.0, duration_s=4.0,
               n_patterns=600, reconstruction_path="reconstruction.h5", reconstruction_sha256=digest,
               reconstruction_size_bytes=2, artifacts=[{"path": "reconstruction.h5", "sha256": digest,
                                                        "size_bytes": 2}],
               metrics=RECORDED)
    write_json(tiny_study / "phase_f" / "iterative_manifest.json", {
        "schema_version": "1.0", "kind": "iterative_manifest", "created": "2026-11-22T05:00:00Z",
        "producer": {"package": "fly64-iterative", "version": "0.1.0"},
        "roots": {"phase_c_root": "../phase_c", "phase_d_root": "../phase_d", "artifact_root": "."},
        "filters": {"dose": None, "view": None, "seeds": None}, "jobs": [job], "skipped_views": []},
        "iterative_manifest")
    iterative = load_iterative_manifest(tiny_study).job(1000, "dense")
    timing = iterative.scores.reconstruction
    assert (timing.device, timing.device_name) == ("cuda:0", "NVIDIA H200")
    assert timing.seconds_per_1000_patterns == pytest.approx(5.0) == iterative.seconds_per_1000_patterns
    assert iterative.scores.floor("phase", "ssim") == 0.05


#: ``RECORDED`` with a "PINN + refine" block, in the shape ``fly64-train evaluate --refine-steps`` records it.
REFINED = {**RECORDED, "refine": {
    "amplitude": {**RECORDED["amplitude"], "ssim": 0.7}, "phase": {**RECORDED["phase"], "ssim": 0.5},
    "coverage": 0.93, "refine": {"steps": 20, "lr": 0.0001, "batch_size": None, "count_split": 0.5, "seed": 0},
    "reconstruction": {"wall_s": 4.0, "refine_s": 1.5, "n_patterns": 500, "device": "cpu"},
    "floor": RECORDED["floor"],
    "information": {**RECORDED["information"], "info": 0.45}}}


def test_the_refine_block_reads_as_scores_of_their_own_with_settings_and_fine_tuning_time():
    from fly64_manifest.scores import RefineSettings

    scores = Scores.from_metrics(REFINED)
    refined = scores.refine
    assert scores.refined_with is None and refined.refine is None
    assert (refined.metric("amplitude", "ssim"), refined.metric("phase", "ssim")) == (0.7, 0.5)
    assert refined.metric("information", "info") == 0.45 and refined.floor("phase", "ssim") == 0.05
    assert refined.refined_with == RefineSettings(steps=20, lr=0.0001, batch_size=None, count_split=0.5, seed=0)
    assert (refined.reconstruction.wall_s, refined.reconstruction.refine_s) == (4.0, 1.5)
    assert refined.reconstruction.seconds_per_1000_patterns == pytest.approx(8.0)
    assert scores.reconstruction.refine_s is None and (refined.region, refined.alignment) == (None, None)
    # Plain prediction's scores are untouched by the block beside them.
    assert scores.metric("phase", "ssim") == 0.42 and Scores.from_metrics(RECORDED).refine is None
    # Mistyped settings read as None, not as an exception.
    odd = {**REFINED, "refine": {**REFINED["refine"], "refine": {"steps": 0, "lr": "fast"}}}
    assert Scores.from_metrics(odd).refine.refined_with is None
