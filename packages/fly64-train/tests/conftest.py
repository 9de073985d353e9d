"""Tiny real DATA-001 datasets made with the simulator's own physics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fly64_data.contract import utc_now, write_dataset
from fly64_data.physics import extract_patches, far_field_intensity
from fly64_data.sample import raster_scan, synthetic_object, synthetic_probe
from fly64_train.training.config import TrainConfig
from fly64_train.training.model_config import ModelConfig
from fly64_train.training.torch_options import FLAT_TORCH_KEYS, TorchOptions

TINY_N = 32


@pytest.fixture(autouse=True)
def _few_threads():
    # The machine is shared: one intra-op thread keeps parallel test workers from fighting.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture()
def outside(tmp_path) -> Path:
    """A folder outside every root a test writes, holding ``thesis.txt`` ("years of work"): a link's target."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "thesis.txt").write_text("years of work")
    return folder


def simulate(n: int = TINY_N, object_size: int = 128, step: float = 8.0, dose: float | None = 1e4,
             seed: int = 7) -> dict[str, np.ndarray | float]:
    """Object, probe, positions, patches and diffraction; ``dose=None`` gives noiseless data."""
    obj = synthetic_object(object_size, seed)
    probe = synthetic_probe(n)
    x, y = raster_scan(obj.shape, n, step, seed)
    patches = extract_patches(obj, y, x, n)
    intensity = far_field_intensity(probe * patches).astype(np.float64)
    total = float(intensity.sum(axis=(1, 2)).mean())
    scale = float(np.sqrt((dose or 1e4) / total))
    if dose is None:
        diffraction = np.sqrt(intensity).astype(np.float32)
    else:
        counts = np.random.default_rng(seed).poisson(intensity * scale**2)
        diffraction = (np.sqrt(counts) / scale).astype(np.float32)
    return {"object": obj, "probe": probe, "x": x, "y": y, "Y": patches, "intensity": intensity,
            "diffraction": diffraction, "scale": scale}


def write_npz(path: Path, sim: dict, rows: np.ndarray | None = None, **meta_overrides) -> Path:
    rows = np.arange(sim["x"].size) if rows is None else rows
    arrays = {
        "diffraction": sim["diffraction"][rows], "Y": sim["Y"][rows],
        "objectGuess": sim["object"], "probeGuess": sim["probe"],
        "xcoords": sim["x"][rows].astype(np.float64), "ycoords": sim["y"][rows].astype(np.float64),
        "scan_index": rows.astype(np.int64),
    }
    meta = {"schema_version": "1.0", "created": utc_now(), "producer": {"package": "tests", "version": "0"},
            "dose": 1e4, "measured_mean_counts": 1e4, "intensity_scale": sim["scale"], "N": int(sim["probe"].shape[0]),
            "seeds": {"simulation": 7}, "sources": [], "data_transformations": []}
    meta.update(meta_overrides)
    return write_dataset(path, arrays, meta)


@pytest.fixture(scope="session")
def tiny_sim() -> dict:
    return simulate()


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory, tiny_sim) -> Path:
    """A noisy N = 32 training NPZ with the positions of the upper half of the scan."""
    train = np.flatnonzero(tiny_sim["y"] < np.median(tiny_sim["y"]) + 1)
    return write_npz(tmp_path_factory.mktemp("data") / "patched_train.npz", tiny_sim, train)


TINY_MODEL = ModelConfig(base_width=4, depth=3, convs_per_level=1)


def tiny_config(train_path, job_dir, gridsize=1, **kw) -> TrainConfig:
    """Seconds-long deterministic training settings for N = 32; a torch option (``accelerator="cpu"``)
    may be given by its name and lands in ``config.torch``."""
    torch_options = {key: kw.pop(key) for key in FLAT_TORCH_KEYS if key in kw}
    base = dict(train_path=str(train_path), job_dir=str(job_dir), gridsize=gridsize, max_epochs=2,
                batch_size=16, model=TINY_MODEL, deterministic=True, progress_bar=False, val_fraction=0.1,
                torch=TorchOptions(**torch_options))
    base.update(kw)
    return TrainConfig(**base)


def read_losses(job_dir: Path, log_path: str) -> list[tuple[str, str]]:
    """(epoch, train_loss) rows of a CSV log."""
    import csv

    with (Path(job_dir) / log_path).open() as fh:
        return [(row["epoch"], row["train_loss"]) for row in csv.DictReader(fh) if row.get("train_loss")]


@pytest.fixture(scope="session")
def make_config():
    return tiny_config


@pytest.fixture(scope="session")
def losses_of():
    return read_losses


TINY_STUDY_DATA = ["--patch-size", "32", "--object-size", "192", "--scan-step", "8"]


@pytest.fixture(scope="session")
def tiny_study_data(tmp_path_factory) -> Path:
    """Phase C and Phase D of a tiny study (N = 32), written by their real CLIs; treat as read-only."""
    from fly64_data.cli import main as data_main
    from fly64_overlap.cli import main as overlap_main

    root = tmp_path_factory.mktemp("tiny_study")
    assert data_main(["generate", "--output-root", str(root / "phase_c"), *TINY_STUDY_DATA]) == 0
    assert overlap_main(["--phase-c-root", str(root / "phase_c"), "--output-root", str(root / "phase_d")]) == 0
    return root


def rewrite_zip(path: Path, out: Path, edit_manifest=None, replace=None) -> Path:
    """A copy of the bundle at ``path`` with its manifest edited and/or members replaced (tampering tests)."""
    import json
    import zipfile

    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "manifest.json" and edit_manifest:
                doc = json.loads(data)
                edit_manifest(doc)
                data = json.dumps(doc).encode()
            dst.writestr(name, (replace or {}).get(name, data))
    return out


@pytest.fixture(scope="session")
def rewrite_bundle():
    return rewrite_zip

