"""PINN + LSQML: Phase F started from Phase E's prediction, on tiny real data (a real tiny training, real pty-chi)."""

from __future__ import annotations

import numpy as np
import pytest

from fly64_iterative.cli import main
from fly64_iterative.pinn_start import OBJECT_START
from fly64_manifest import load_iterative_manifest, load_training_manifest, verify

from .conftest import TINY_DOSE

FAST = ["--epochs", "2", "--batch-size", "64", "--device", "cpu"]
TINY_TRAIN = ["--max-epochs", "1", "--n-groups", "16", "--batch-size", "8", "--base-width", "4", "--deterministic",
              "--logger", "none"]


def _args(data, out, *extra):
    return ["run", "--phase-c-root", str(data / "phase_c"), "--phase-d-root", str(data / "phase_d"),
            "--artifact-root", str(out), "--dose", TINY_DOSE, *FAST, *extra]


@pytest.fixture(scope="module")
def phase_e(tiny_study_data, tmp_path_factory):
    """A real (seconds-long) Phase E of the baseline view."""
    from fly64_train.cli import main as train_main

    root = tmp_path_factory.mktemp("phase_e")
    assert train_main(["run", "--phase-c-root", str(tiny_study_data / "phase_c"), "--phase-d-root",
                       str(tiny_study_data / "phase_d"), "--artifact-root", str(root), "--view", "baseline",
                       "--dose", TINY_DOSE, *TINY_TRAIN]) == 0
    return root


def test_a_pinn_start_is_recorded_timed_and_verifies(tiny_study_data, phase_e, tmp_path):
    out = tmp_path / "phase_f_pinn"
    assert main(_args(tiny_study_data, out, "--view", "baseline", "--pinn-start", str(phase_e))) == 0
    (job,) = load_iterative_manifest(out).jobs
    trained = load_training_manifest(phase_e).job(float(TINY_DOSE), "baseline")
    options = job.engine_options
    assert job.status == "success" and options["object_start"] == OBJECT_START
    assert options["pinn_bundle_sha256"] == trained.bundle_sha256
    # The method's time is the prediction and the fit together.
    assert job.wall_time_s == pytest.approx(options["pinn_predict_s"] + options["fit_s"], abs=1e-3)
    assert job.metrics["information"]["info"] is not None
    assert verify(out) == []
    # A rerun with the same start is done already; a flat start is another method, refused in this root.
    assert main(_args(tiny_study_data, out, "--view", "baseline", "--pinn-start", str(phase_e))) == 0
    assert load_iterative_manifest(out).jobs[0].raw == job.raw
    assert main(_args(tiny_study_data, out, "--view", "baseline", "--no-information")) == 1
    assert load_iterative_manifest(out).jobs[0].raw == job.raw


def test_a_bundle_whose_bytes_differ_from_the_record_is_refused_before_anything_is_written(
        tiny_study_data, phase_e, tmp_path, capsys):
    import shutil

    # Phase E's manifest names its data roots relative to itself: the copy sits beside the original.
    copy = phase_e.with_name(phase_e.name + "_tampered")
    shutil.copytree(phase_e, copy, dirs_exist_ok=True)
    bundle = load_training_manifest(copy).job(float(TINY_DOSE), "baseline").bundle_path
    with open(bundle, "ab") as fh:
        fh.write(b"\0")
    out = tmp_path / "phase_f_pinn"
    capsys.readouterr()
    assert main(_args(tiny_study_data, out, "--view", "baseline", "--pinn-start", str(copy))) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "wts.h5.zip" in err and "differs from the training manifest" in err
    assert not out.exists()


def test_a_cell_without_a_pinn_is_refused_before_anything_is_written(tiny_study_data, phase_e, tmp_path, capsys):
    out = tmp_path / "phase_f_pinn"
    assert main(_args(tiny_study_data, out, "--view", "dense", "--pinn-start", str(phase_e))) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "training_manifest.json" in err and "no PINN of" in err
    assert not out.exists()
    assert main(_args(tiny_study_data, out, "--pinn-start", str(tmp_path / "nowhere"))) == 1
    assert "--pinn-start folder not found" in capsys.readouterr().err and not out.exists()


def test_the_fit_starts_where_it_is_told(tiny_study_data):
    # Started at the true object, one LSQML epoch stays close to it; from flat it is still far: the start
    # reaches pty-chi (the PINN start is this argument).
    from fly64_iterative.convention import counts_of
    from fly64_iterative.engine import EngineConfig, reconstruct
    from fly64_train.data.reader import open_dataset

    info = open_dataset(tiny_study_data / f"phase_c/dose_{TINY_DOSE}/patched_test.npz")
    truth = info.readers["objectGuess"].read_all()
    counts = counts_of(info.diffraction.read_all(), info.intensity_scale)
    cfg = EngineConfig(epochs=1, batch_size=64, device="cpu")
    args = (counts, info.probe, info.ycoords, info.xcoords, truth.shape, info.intensity_scale, cfg)
    lit = np.zeros(truth.shape, bool)
    n = info.probe.shape[0]
    for y, x in zip(info.ycoords, info.xcoords, strict=True):
        lit[int(y) - n // 4:int(y) + n // 4, int(x) - n // 4:int(x) + n // 4] = True

    def error(obj: np.ndarray) -> float:
        return float(np.mean(np.abs(obj[lit] - truth[lit])))

    from_truth = error(reconstruct(*args, start=truth).object)
    from_flat = error(reconstruct(*args).object)
    assert from_truth < 0.5 * from_flat, (from_truth, from_flat)
    with pytest.raises(ValueError, match="starting object"):
        reconstruct(*args, start=truth[:-1])
