"""Phase C: simulate diffraction of the base sample at each photon dose.

Physics per dose ``d`` (see :mod:`fly64_data.physics` for the conventions)::

    O_j   = extract_patches(object, y_j, x_j, N)
    I_j   = |fftshift(fft2(P * O_j, norm="ortho"))|^2
    s^2   = d / mean_j sum(I_j)            # one scalar per dataset
    k_j   ~ Poisson(s^2 I_j)               # counts, seeded per dose
    diffraction_j = sqrt(k_j) / s          # stored amplitude; s is intensity_scale

Positions are the same at every dose; only the noise differs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from fly64_data import __version__
from fly64_data.contract import SCHEMA_VERSION, creation_time, sha256_file, write_dataset
from fly64_data.design import StudyDesign, dose_dirname
from fly64_data.physics import extract_patches, far_field_intensity
from fly64_data.sample import BaseSample
from fly64_data.staging import Staging

PRODUCER = {"package": "fly64-data", "version": __version__}
CHUNK = 256  # patterns per FFT batch: bounds temporary memory


@dataclass(frozen=True)
class DoseResult:
    """What a dose simulation produced for one split."""

    dose: float
    intensity_scale: float
    measured_mean_counts: float
    noise_seed: int
    arrays: dict[str, np.ndarray] = field(repr=False)


def noise_seed(simulation_seed: int, dose: float) -> int:
    """Per-dose Poisson seed derived from the design's simulation seed."""
    return int(np.random.SeedSequence([simulation_seed, int(round(dose))]).generate_state(1)[0])


def noiseless_intensity(sample: BaseSample) -> tuple[np.ndarray, np.ndarray]:
    """Object patches ``Y`` and far-field intensities ``I`` at every scan position."""
    n = sample.patch_size
    count = sample.xcoords.size
    patches = np.empty((count, n, n), np.complex64)
    intensity = np.empty((count, n, n), np.float32)
    for sl in iter_chunks(count):
        patches[sl] = extract_patches(sample.object, sample.ycoords[sl], sample.xcoords[sl], n)
        intensity[sl] = far_field_intensity(sample.probe * patches[sl])
    return patches, intensity


def poisson_counts(intensity: np.ndarray, dose: float, seed: int) -> tuple[np.ndarray, float]:
    """Scale intensities to a mean of ``dose`` photons per pattern and draw Poisson counts.

    Returns the counts (float32) and the scale ``s`` with ``mean_j sum(s^2 I_j) = dose``.
    """
    mean_total = float(intensity.sum(axis=(1, 2), dtype=np.float64).mean())
    if not mean_total > 0:
        raise ValueError("the simulated far-field intensity is zero everywhere (empty probe or object)")
    scale = float(np.sqrt(dose / mean_total))
    chunks = list(iter_chunks(intensity.shape[0]))
    # One generator per chunk (seeded from the dose seed) makes the draw
    # independent of thread count; Generator.poisson releases the GIL, so
    # threads give real parallelism.
    generators = [np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(len(chunks))]
    counts = np.empty_like(intensity)

    def draw(job: tuple[slice, np.random.Generator]) -> None:
        sl, rng = job
        counts[sl] = rng.poisson(intensity[sl] * np.float32(scale**2))

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(draw, zip(chunks, generators, strict=True)))
    return counts, scale


def split_mask(coords: np.ndarray) -> tuple[np.ndarray, float]:
    """Train mask (coordinate < midpoint of the scanned range) and the split value."""
    threshold = 0.5 * (float(coords.min()) + float(coords.max()))
    return coords < threshold, threshold


@dataclass(frozen=True)
class SweepConfig:
    """Inputs of a Phase C sweep beyond the study design."""

    output_root: Path
    doses: Sequence[float]
    scan_step: float
    object_size: int | None = None  # None when the object comes from --base-npz
    show_progress: bool = False


def run_sweep(sample: BaseSample, design: StudyDesign, config: SweepConfig) -> dict[str, Any]:
    """Simulate every dose, write the split NPZs and return the run manifest document.

    Everything is written into a staging folder inside ``output_root`` and moved
    into place only once every file has been written and validated, so a failure
    leaves ``output_root`` as it was; staging folders of killed runs are removed
    first (:mod:`fly64_data.staging`).
    """
    from fly64_manifest import inside_root, refuse_foreign_root, write_json

    root = Path(config.output_root)
    # Phase C replaces whole dose folders: never in another phase's root (a Phase E root
    # would lose its trained jobs), never through a dose folder that is a link.
    refuse_foreign_root(root, "run_manifest.json", output_flag="--output-root")
    for dose in config.doses:
        inside_root(root / dose_dirname(dose), root, what="Phase C dose folder")
    root.mkdir(parents=True, exist_ok=True)
    created = creation_time()
    patches, intensity = noiseless_intensity(sample)
    axis_coords = sample.ycoords if design.train_test_split_axis == "y" else sample.xcoords
    train, threshold = split_mask(axis_coords)
    if train.all() or not train.any():
        raise ValueError("the scan does not span two distinct coordinates along the split axis")
    sample_sha = sample.sha256()
    sim_seed = int(design.rng_seeds["simulation"])
    dose_records = []
    with Staging(root) as staging:
        doses = tqdm(config.doses, desc="Phase C doses", unit="dose", disable=not config.show_progress)
        for dose in doses:
            seed = noise_seed(sim_seed, dose)
            counts, scale = poisson_counts(intensity, dose, seed)
            totals = counts.sum(axis=(1, 2), dtype=np.float64)  # photons per pattern
            measured = float(totals.mean())
            diffraction = (np.sqrt(counts) / np.float32(scale)).astype(np.float32)
            del counts
            dirname = dose_dirname(dose)
            files = {}
            for split, mask in (("train", train), ("test", ~train)):
                arrays = {
                    "diffraction": diffraction[mask],
                    "Y": patches[mask],
                    "objectGuess": sample.object,
                    "probeGuess": sample.probe,
                    "xcoords": sample.xcoords[mask].astype(np.float64),
                    "ycoords": sample.ycoords[mask].astype(np.float64),
                    "scan_index": np.flatnonzero(mask).astype(np.int64),
                }
                meta = _metadata(design, sample, sample_sha, dose, scale, float(totals[mask].mean()), measured,
                                 seed, created, split, threshold, arrays, config)
                rel = f"{dirname}/patched_{split}.npz"
                written = write_dataset(staging / rel, arrays, meta)
                files[split] = {"path": rel, "sha256": sha256_file(written),
                                "size_bytes": written.stat().st_size, "n_positions": int(mask.sum())}
            del diffraction
            dose_records.append({"dose": float(dose), "directory": dirname, "measured_mean_counts": measured,
                                 "intensity_scale": scale, "noise_seed": seed, "files": files})
        manifest = {
            "schema_version": "1.0",
            "kind": "run_manifest",
            "created": created,
            "producer": PRODUCER,
            "design": design.to_dict(),
            "base_sample": {"source": sample.source, "sha256": sample_sha,
                            "object_shape": list(sample.object.shape), "probe_shape": list(sample.probe.shape),
                            "n_positions": int(sample.xcoords.size)},
            "parameters": {"patch_size": sample.patch_size, "seeds": {"simulation": sim_seed},
                           "split_axis": design.train_test_split_axis, "split_threshold": threshold,
                           "scan_step": config.scan_step, "object_size": config.object_size},
            "doses": dose_records,
        }
        manifest["doses"] = _merge_previous(root / "run_manifest.json", manifest)
        write_json(staging / "run_manifest.json", manifest, "run_manifest")
        _commit_staging(staging, root, [r["directory"] for r in dose_records])
    return manifest


def _merge_previous(previous_path: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Dose records after this run: earlier doses of the same sample are kept.

    Running one dose into a root that already holds others must not drop them
    from the manifest; a root made from another sample or patch size is refused.
    """
    from fly64_manifest import ManifestError, validate

    if not previous_path.exists():
        return manifest["doses"]
    try:
        previous = validate(previous_path, "run_manifest")
    except ManifestError as exc:
        raise ValueError(f"{previous_path}: existing manifest is unreadable ({exc}); "
                         "use a fresh --output-root") from None
    same = (previous["base_sample"]["sha256"] == manifest["base_sample"]["sha256"]
            and previous["parameters"]["patch_size"] == manifest["parameters"]["patch_size"])
    if not same:
        raise ValueError(f"{previous_path}: this output root holds data from another base sample or patch "
                         "size; use a fresh --output-root")
    new = {rec["directory"]: rec for rec in manifest["doses"]}
    kept = [rec for rec in previous["doses"] if rec["directory"] not in new
            and (previous_path.parent / rec["directory"]).is_dir()]
    return sorted([*kept, *new.values()], key=lambda rec: rec["dose"])


def _metadata(design: StudyDesign, sample: BaseSample, sample_sha: str, dose: float, scale: float,
              split_mean: float, measured: float, seed: int, created: str, split: str, threshold: float,
              arrays: dict[str, np.ndarray], config: SweepConfig) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "created": created,
        "producer": PRODUCER,
        "dose": float(dose),
        "measured_mean_counts": split_mean,
        "dataset_mean_counts": measured,
        "intensity_scale": scale,
        "N": sample.patch_size,
        "split": split,
        "seeds": {"simulation": int(design.rng_seeds["simulation"]), "noise": seed},
        "sources": [{"path": sample.source, "sha256": sample_sha}],
        "physics": {
            "far_field": "fftshift(fft2(probe * patch, norm='ortho')); DC at (N/2, N/2)",
            "interpolation": "bilinear; patch pixel (N/2, N/2) at the scan position",
            "noise": "Poisson",
            "normalization": "diffraction = sqrt(counts) / intensity_scale",
        },
        "data_transformations": [
            {"step": "simulate_diffraction", "producer": PRODUCER, "dose": float(dose),
             "intensity_scale": scale, "noise_seed": seed, "n_positions": int(sample.xcoords.size),
             "scan_step": config.scan_step},
            {"step": "train_test_split", "axis": design.train_test_split_axis, "threshold": threshold,
             "rule": "train if coordinate < threshold", "split": split,
             "n_positions": int(arrays["xcoords"].size)},
        ],
    }


def _commit_staging(staging: Path, root: Path, dirnames: list[str]) -> None:
    """Move staged dose folders and the manifest into ``root``, replacing older ones."""
    for dirname in dirnames:
        target = root / dirname
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".old-{dirname}-", dir=root))
            os.replace(target, retired / dirname)
        os.replace(staging / dirname, target)
    os.replace(staging / "run_manifest.json", root / "run_manifest.json")
    for old in root.glob(".old-*"):
        shutil.rmtree(old, ignore_errors=True)


def iter_chunks(n: int, size: int = CHUNK) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, start + size)
