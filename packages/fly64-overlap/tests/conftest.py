"""Small, real Phase C trees built with the fly64-data contract writer (no simulator needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fly64_data.contract import sha256_file, write_dataset
from fly64_data.physics import extract_patches, far_field_intensity
from fly64_manifest import write_json

N = 16  # patch size: dense S = 4.8 px, sparse S = 12.8 px
STEP = 2.5  # raster step, the same step/N ratio as the real study (20 / 128)
CREATED = "2026-01-01T00:00:00Z"


def _probe(n: int = N) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n] - n // 2
    r = np.hypot(yy, xx)
    amp = 0.5 * (1.0 - np.tanh((r - 0.19 * n) / (0.025 * n)))
    return (amp * np.exp(0.3j * (r / n) ** 2)).astype(np.complex64)


def _object(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.75 + 0.2 * rng.random((size, size))) * np.exp(0.5j * rng.standard_normal((size, size)))


def build_phase_c(root: Path, doses=(1000.0,), grid: int = 12, step: float = STEP) -> Path:
    """Write ``run_manifest.json`` and ``dose_<int>/patched_{train,test}.npz`` under ``root``."""
    lo = N / 2 + 2
    size = int(np.ceil(lo + (grid - 1) * step + N / 2 + 3))
    obj = _object(size).astype(np.complex64)
    probe = _probe()
    g = lo + step * np.arange(grid)
    gy, gx = np.meshgrid(g, g, indexing="ij")
    rng = np.random.default_rng(42)
    x = gx.ravel() + rng.uniform(-0.25, 0.25, gx.size)
    y = gy.ravel() + rng.uniform(-0.25, 0.25, gx.size)
    patches = extract_patches(obj, y, x, N)
    intensity = far_field_intensity(probe * patches)
    threshold = 0.5 * (y.min() + y.max())
    train = y < threshold
    records = []
    for dose in doses:
        scale = float(np.sqrt(dose / intensity.sum(axis=(1, 2)).mean()))
        counts = np.random.default_rng(int(dose)).poisson(intensity * scale**2).astype(np.float32)
        diffraction = (np.sqrt(counts) / scale).astype(np.float32)
        files = {}
        for split, mask in (("train", train), ("test", ~train)):
            arrays = {"diffraction": diffraction[mask], "Y": patches[mask], "objectGuess": obj,
                      "probeGuess": probe, "xcoords": x[mask], "ycoords": y[mask],
                      "scan_index": np.flatnonzero(mask).astype(np.int64)}
            meta = {"schema_version": "1.0", "created": CREATED,
                    "producer": {"package": "fly64-data", "version": "0.1.0"}, "dose": dose,
                    "measured_mean_counts": float(counts[mask].sum(axis=(1, 2)).mean()),
                    "intensity_scale": scale, "N": N, "split": split, "seeds": {"simulation": 42},
                    "sources": [{"path": "embedded:test", "sha256": "0" * 64}],
                    "data_transformations": [{"step": "train_test_split", "split": split}]}
            rel = f"dose_{int(dose)}/patched_{split}.npz"
            path = write_dataset(root / rel, arrays, meta)
            files[split] = {"path": rel, "sha256": sha256_file(path), "size_bytes": path.stat().st_size,
                            "n_positions": int(mask.sum())}
        records.append({"dose": dose, "directory": f"dose_{int(dose)}", "measured_mean_counts": float(dose),
                        "intensity_scale": scale, "noise_seed": int(dose), "files": files})
    manifest = {"schema_version": "1.0", "kind": "run_manifest", "created": CREATED,
                "producer": {"package": "fly64-data", "version": "0.1.0"}, "design": {},
                "base_sample": {"source": "embedded:test", "sha256": "1" * 64, "object_shape": [size, size],
                                "probe_shape": [N, N], "n_positions": int(x.size)},
                "parameters": {"patch_size": N, "seeds": {"simulation": 42}, "split_axis": "y"},
                "doses": records}
    write_json(root / "run_manifest.json", manifest, "run_manifest")
    return root


@pytest.fixture
def phase_c(tmp_path: Path) -> Path:
    """A two-dose Phase C tree: 12 x 12 raster, 72 positions per split."""
    return build_phase_c(tmp_path / "phase_c", doses=(1000.0, 10000.0))


@pytest.fixture
def make_phase_c(tmp_path: Path):
    def make(name: str = "phase_c_custom", **kwargs) -> Path:
        return build_phase_c(tmp_path / name, **kwargs)
    return make
