"""A tiny but complete study on disk, written through ``write_json`` with every schema checked.

SWAP POINT: ``build_tiny_study`` writes the documents itself because fly64-train's
runner does not exist yet. Once it lands, the cross-package suite (``/tests``)
should build this study with the real writers (fly64-data, fly64-overlap,
fly64-train ``--dry-run``/tiny epochs) and run these same checks on it; every
test here only depends on the layout and the ``tiny_study`` fixture, not on how
the files were produced.

Layout (2 doses; sparse at dose 1000 is skipped by Phase D, so Phase E skips it too;
dense at dose 10000 failed to train)::

    <root>/phase_c/run_manifest.json, dose_<d>/patched_{train,test}.npz
    <root>/phase_d/overlap_manifest.json, dose_<d>/<view>/<view>_{train,test}.npz, <view>_metrics.json
    <root>/phase_e/training_manifest.json, skip_summary.json, dose_<d>/<view>/gs<g>/{wts.h5.zip, train.log}
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from fly64_manifest import read_json, write_json

DOSES = (1000.0, 10000.0)
STAMP = "2026-11-22T04:00:00Z"
SKIPPED = {(1000.0, "sparse")}
FAILED = {(10000.0, "dense")}


def _write_bytes(path: Path, data: bytes) -> dict[str, Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}


def _phase_c(root: Path) -> None:
    doses = []
    for dose in DOSES:
        files = {}
        for split in ("train", "test"):
            rel = f"dose_{int(dose)}/patched_{split}.npz"
            # The manifest package only hashes data files, so their content is opaque here.
            files[split] = {"path": rel, "n_positions": 12, **_write_bytes(root / rel, f"{rel}".encode())}
        doses.append({"dose": dose, "directory": f"dose_{int(dose)}", "measured_mean_counts": dose * 0.99,
                      "intensity_scale": dose ** 0.5, "noise_seed": int(dose) + 42, "files": files})
    write_json(root / "run_manifest.json", {
        "schema_version": "1.0", "kind": "run_manifest", "created": STAMP,
        "producer": {"package": "fly64-data", "version": "0.1.0"}, "design": {"patch_size_pixels": 8},
        "base_sample": {"source": "embedded", "sha256": "b" * 64, "object_shape": [32, 32],
                        "probe_shape": [8, 8], "n_positions": 24},
        "parameters": {"patch_size": 8, "seeds": {"simulation": 42}, "split_axis": "y"},
        "doses": doses,
    }, "run_manifest")


def _overlap_metrics(dose: float, view: str) -> dict[str, Any]:
    split = {
        "n_input": 12, "kept": 6, "rejected": 6, "n_positions": 6,
        "nearest_neighbour": {"mean": 0.5, "min": 0.4, "max": 0.6, "percentiles": {"50": 0.5},
                              "histogram": {"edges": [0.0, 1.0], "counts": [6]},
                              "distance_px": {"min": 3.0, "mean": 4.0, "median": 4.0}},
        "image_based": {"mean": 0.45, "disc_samples": 64, "images_evaluated": 6},
        "group_based": {"mean": 0.55, "neighbor_count": 7, "group_size": 4, "groups_evaluated": 6, "seed": 123},
    }
    return {
        "schema_version": "1.0", "kind": "overlap_metrics", "created": STAMP,
        "producer": {"package": "fly64-overlap", "version": "0.1.0"}, "dose": dose, "view": view,
        "overlap_fraction_target": 0.7 if view == "dense" else 0.2, "spacing_px": 2.4, "seed": 456,
        "probe_diameter": {"value_px": 6.0, "method": "encircled_energy", "energy_fraction": 0.9,
                           "definition": "diameter holding 90% of the probe intensity"},
        "splits": {"train": split, "test": split},
    }


def _phase_d(root: Path, phase_c: Path) -> None:
    views, skipped = [], []
    for dose in DOSES:
        for view in ("dense", "sparse"):
            d = f"dose_{int(dose)}"
            entry: dict[str, Any] = {
                "dose": dose, "view": view, "status": "ok", "overlap_fraction_target": 0.7 if view == "dense" else 0.2,
                "spacing_px": 2.4, "seed": 456,
                "counts": {s: {"input": 12, "kept": 6, "rejected": 6} for s in ("train", "test")},
                "sources": {s: {"path_in_phase_c": f"{d}/patched_{s}.npz", "sha256": "c" * 64}
                            for s in ("train", "test")},
            }
            if (dose, view) in SKIPPED:
                reason = "train split keeps 1 of 12 positions, fewer than --min-positions 8"
                entry.update(status="skipped", reason=reason)
                skipped.append({"dose": dose, "view": view, "reason": reason})
                views.append(entry)
                continue
            files = {}
            for split in ("train", "test"):
                rel = f"{d}/{view}/{view}_{split}.npz"
                files[split] = {"path": rel, "n_positions": 6, **_write_bytes(root / rel, rel.encode())}
            metrics_rel = f"{d}/{view}/{view}_metrics.json"
            write_json(root / metrics_rel, _overlap_metrics(dose, view), "overlap_metrics")
            files["metrics"] = {"path": metrics_rel, **_write_bytes(root / metrics_rel,
                                                                    (root / metrics_rel).read_bytes())}
            summary = {"nearest_neighbour_mean": 0.5, "image_based_mean": 0.45, "group_based_mean": 0.55,
                       "min_pair_distance_px": 3.0}
            entry.update(directory=f"{d}/{view}", files=files,
                         measured_overlap={"probe_diameter_px": 6.0, "train": summary, "test": summary})
            views.append(entry)
    write_json(root / "overlap_manifest.json", {
        "schema_version": "1.0", "kind": "overlap_manifest", "created": STAMP,
        "producer": {"package": "fly64-overlap", "version": "0.1.0"},
        "design": {"overlap_views": {"dense": 0.7, "sparse": 0.2},
                   "spacing_thresholds": {"dense": 2.4, "sparse": 6.4}, "neighbor_count": 7,
                   "gridsizes": [1, 2], "patch_size_pixels": 8, "rng_seeds": {"subsampling": 456}},
        "parameters": {"min_positions": 8, "selection": "min_spacing_kdtree", "probe_diameter": "encircled_energy"},
        "phase_c": {"run_manifest_sha256": hashlib.sha256((phase_c / "run_manifest.json").read_bytes()).hexdigest()},
        "views": views, "skipped_views": skipped, "skipped_count": len(skipped),
    }, "overlap_manifest")


def write_bundle(path: Path, dose: float, view: str, gridsize: int) -> None:
    """A real zip in the bundle's shape: ``manifest.json`` plus (stand-in) weights."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"format_version": "1.0", "backend": "pytorch",
                                                 "models": ["autoencoder"], "N": 8, "gridsize": gridsize,
                                                 "intensity_scale": dose ** 0.5, "config": {"view": view}}))
        zf.writestr("autoencoder/state_dict.safetensors", bytes(range(256)) * 4)


def _metrics(dose: float, view: str) -> dict[str, Any]:
    # Distinct, dose-dependent numbers so table and lookup tests can tell jobs apart.
    base = {"baseline": 0.0, "dense": 0.05, "sparse": -0.05}[view] + 0.1 * DOSES.index(dose)
    scores = {"mae": 0.1 - base / 10, "psnr": 20.0 + 10 * base, "ssim": 0.6 + base, "ms_ssim": 0.7 + base,
              "frc50": 0.2 + base, "frc_1_7": 0.3 + base, "pearson": 0.8 + base / 2}
    return {"amplitude": scores, "phase": {k: v * 0.9 for k, v in scores.items()}}


def training_documents(root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write the job dirs under ``root/phase_e`` and return (training manifest, skip summary)."""
    artifact = root / "phase_e"
    jobs, skipped = [], []
    for dose in DOSES:
        for view, gridsize in (("baseline", 1), ("dense", 2), ("sparse", 2)):
            if (dose, view) in SKIPPED:
                skipped.append({"dose": dose, "view": view, "gridsize": gridsize,
                                "reason": "Phase D skipped this view: too few positions"})
                continue
            job_dir = f"dose_{int(dose)}/{view}/gs{gridsize}"
            (artifact / job_dir).mkdir(parents=True, exist_ok=True)
            (artifact / job_dir / "train.log").write_text("epoch 1 loss 1.0\n")
            failed = (dose, view) in FAILED
            result: dict[str, Any] = {
                "status": "failed" if failed else "success", "final_loss": None if failed else 1.5 - dose / 1e5,
                "epochs_completed": 0 if failed else 2, "checkpoint_path": None, "bundle_path": None,
                "bundle_sha256": None, "bundle_size_bytes": None, "metrics": None,
                "error": "RuntimeError: loss is NaN at epoch 1" if failed else None, "duration_s": 1.25,
            }
            if not failed:
                bundle = artifact / job_dir / "wts.h5.zip"
                write_bundle(bundle, dose, view, gridsize)
                data = bundle.read_bytes()
                result.update(checkpoint_path="checkpoints/last.ckpt", bundle_path="wts.h5.zip",
                              bundle_sha256=hashlib.sha256(data).hexdigest(), bundle_size_bytes=len(data),
                              metrics=_metrics(dose, view))
            d = f"dose_{int(dose)}"
            jobs.append({
                "dose": dose, "view": view, "gridsize": gridsize, "job_dir": job_dir,
                "data_root": "phase_c_root" if view == "baseline" else "phase_d_root",
                "train_data_path": f"{d}/patched_train.npz" if view == "baseline" else f"{d}/{view}/{view}_train.npz",
                "test_data_path": f"{d}/patched_test.npz" if view == "baseline" else f"{d}/{view}/{view}_test.npz",
                "log_path": "train.log", "result": result,
            })
    manifest = {
        "schema_version": "1.0", "kind": "training_manifest", "timestamp": STAMP,
        "producer": {"package": "fly64-train", "version": "0.1.0"},
        "phase_c_root": "../phase_c", "phase_d_root": "../phase_d", "artifact_root": ".",
        "filters": {"dose": None, "view": None, "gridsize": None}, "backend": "pytorch", "dry_run": False,
        "jobs": jobs, "skipped_views": skipped, "skipped_count": len(skipped),
        "skip_summary_path": "skip_summary.json",
    }
    summary = {"schema_version": "1.0", "kind": "skip_summary", "timestamp": STAMP,
               "skipped_views": skipped, "skipped_count": len(skipped)}
    return manifest, summary


def build_tiny_study(root: Path) -> Path:
    """Write a complete tiny study under ``root`` and return it."""
    _phase_c(root / "phase_c")
    _phase_d(root / "phase_d", root / "phase_c")
    manifest, summary = training_documents(root)
    write_json(root / "phase_e" / "training_manifest.json", manifest, "training_manifest")
    write_json(root / "phase_e" / "skip_summary.json", summary, "skip_summary")
    return root


@pytest.fixture
def tiny_study(tmp_path: Path) -> Path:
    return build_tiny_study(tmp_path / "study")


@pytest.fixture
def training_doc(tiny_study: Path) -> dict[str, Any]:
    """The tiny study's training manifest as a plain (mutable) document."""
    return read_json(tiny_study / "phase_e" / "training_manifest.json")


@pytest.fixture
def skip_doc(tiny_study: Path) -> dict[str, Any]:
    return read_json(tiny_study / "phase_e" / "skip_summary.json")
