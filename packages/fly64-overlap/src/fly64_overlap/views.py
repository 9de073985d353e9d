"""Phase D: derive each dose's overlap views from the Phase C files.

Layout written under the output root::

    dose_<int>/<view>/<view>_train.npz
    dose_<int>/<view>/<view>_test.npz
    dose_<int>/<view>/<view>_metrics.json
    overlap_manifest.json

Everything is staged in a temporary folder inside the output root and moved
into place only after every file has been written and validated, so a failure
leaves the output root exactly as it was; staging folders of killed runs are
removed first (:mod:`fly64_data.staging`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from fly64_data.contract import ContractError, load_dataset, sha256_file, validate_dataset, write_dataset
from fly64_data.contract import creation_time as contract_creation_time
from fly64_data.design import StudyDesign, dose_dirname, get_study_design
from fly64_data.staging import Staging
from fly64_manifest import ManifestError, validate, write_json
from fly64_overlap import __version__
from fly64_overlap.metrics import MetricsConfig, measure_overlap
from fly64_overlap.probe import ENERGY_FRACTION, ProbeDiameter, measure_probe_diameter
from fly64_overlap.selection import Selection, select_min_spacing

PRODUCER = {"package": "fly64-overlap", "version": __version__}
SPLITS = ("train", "test")
MANIFEST_NAME = "overlap_manifest.json"
SELECTION_RULE = ("greedy in a seeded random order (design rng_seeds['subsampling']): keep a position "
                  "unless an already kept one is closer than S = (1 - f) N")


class OverlapError(ValueError):
    """A Phase D input is missing or inconsistent; the message names the file."""


def default_min_positions(design: StudyDesign) -> int:
    """Smallest split that can form gs2 groups: a seed plus its K nearest neighbours (K + 1)."""
    return int(design.neighbor_count) + 1


def view_spacing(design: StudyDesign, view: str, patch_size: int) -> float:
    """Minimum spacing S of a view for data of patch size N.

    The design's threshold applies when the data has the design's N; data of
    another N (a user's ``--base-npz`` probe) gets ``S = (1 - f) N`` for its own N,
    so a view means the same overlap whatever the probe size.
    """
    if patch_size == int(design.patch_size_pixels):
        return float(design.spacing_thresholds[view])
    return (1.0 - float(design.overlap_views[view])) * patch_size


@dataclass(frozen=True)
class OverlapConfig:
    """What a Phase D run reads, writes and builds.

    Attributes
    ----------
    phase_c_root : Path
        Folder holding ``run_manifest.json`` and ``dose_<int>/patched_{train,test}.npz``.
    output_root : Path
        Folder receiving the views and ``overlap_manifest.json``.
    doses : tuple of float, optional
        Doses to process; all doses of the Phase C run when None.
    views : tuple of str, optional
        View names to build; every view of the design when None.
    min_positions : int, optional
        Fewest positions a split may keep; ``K + 1`` when None.
    show_progress : bool
        Draw a progress bar on stderr.
    design : StudyDesign
        Study constants (views, spacings, seeds, K, gridsizes).
    """

    phase_c_root: Path
    output_root: Path
    doses: tuple[float, ...] | None = None
    views: tuple[str, ...] | None = None
    min_positions: int | None = None
    show_progress: bool = False
    design: StudyDesign = field(default_factory=get_study_design)

    @property
    def effective_min_positions(self) -> int:
        return self.min_positions if self.min_positions is not None else default_min_positions(self.design)


@dataclass
class _SplitInput:
    """One Phase C split file, validated and loaded."""

    path: Path
    path_in_phase_c: str
    sha256: str
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def n(self) -> int:
        return int(self.arrays["xcoords"].size)


def creation_time() -> str:
    """UTC time stamp (shared with Phase C); a bad SOURCE_DATE_EPOCH is an OverlapError."""
    try:
        return contract_creation_time()
    except ValueError as exc:
        raise OverlapError(str(exc)) from None


def read_run_manifest(phase_c_root: Path) -> tuple[dict[str, Any], str]:
    """The validated Phase C run manifest and its sha256."""
    if not phase_c_root.is_dir():
        raise OverlapError(f"{phase_c_root}: Phase C root not found (run `fly64-data generate` first)")
    path = phase_c_root / "run_manifest.json"
    if not path.is_file():
        raise OverlapError(f"{path}: Phase C run manifest not found")
    try:
        doc = validate(path, "run_manifest")
    except ManifestError as exc:
        raise OverlapError(str(exc)) from None
    return doc, sha256_file(path)


def _select_doses(run_manifest: dict[str, Any], phase_c_root: Path,
                  wanted: tuple[float, ...] | None) -> list[dict[str, Any]]:
    records = sorted(run_manifest["doses"], key=lambda rec: rec["dose"])
    if wanted is None:
        return records
    by_dose = {float(rec["dose"]): rec for rec in records}
    chosen = []
    for dose in wanted:
        if float(dose) not in by_dose:
            have = ", ".join(f"{d:g}" for d in by_dose)
            raise OverlapError(f"{phase_c_root / 'run_manifest.json'}: dose {dose:g} is not in the Phase C "
                               f"run (available: {have})")
        if by_dose[float(dose)] not in chosen:
            chosen.append(by_dose[float(dose)])
    return chosen


def _load_split(phase_c_root: Path, record: dict[str, Any], split: str) -> _SplitInput:
    """Validate and load one Phase C split, checking it is the file the run manifest recorded."""
    file_rec = record["files"][split]
    rel = file_rec["path"]
    path = phase_c_root / rel
    if not path.is_file():
        raise OverlapError(f"{path}: file not found (listed in {phase_c_root / 'run_manifest.json'})")
    digest = sha256_file(path)
    if digest != file_rec["sha256"]:
        raise OverlapError(f"{path}: sha256 differs from run_manifest.json (file changed after Phase C)")
    try:
        arrays, meta = load_dataset(path)
    except ContractError as exc:
        raise OverlapError(str(exc)) from None
    del arrays["_metadata"]
    return _SplitInput(path, rel, digest, meta, arrays)


def _view_metadata(parent: _SplitInput, out_path: Path, view: str, fraction: float, selection: Selection,
                   overlap: dict[str, Any], created: str, grouping_seed: int) -> dict[str, Any]:
    """Parent metadata with producer, sources, seeds, counts and the overlap step updated."""
    meta = dict(parent.meta)
    kept = selection.mask
    diffraction = parent.arrays["diffraction"][kept].astype(np.float64)
    scale = float(meta["intensity_scale"])
    meta["created"] = created
    meta["producer"] = dict(PRODUCER)
    meta["measured_mean_counts"] = (float(((diffraction * scale) ** 2).sum(axis=(1, 2)).mean())
                                    if diffraction.size else 0.0)
    meta["sources"] = [{"path": Path(os.path.relpath(parent.path.resolve(), out_path.parent.resolve())).as_posix(),
                        "sha256": parent.sha256}]
    meta["seeds"] = {**meta.get("seeds", {}), "subsampling": selection.seed, "grouping": grouping_seed}
    meta["view"] = view
    meta["data_transformations"] = [*meta["data_transformations"], {
        "step": "overlap_view", "producer": dict(PRODUCER), "view": view, "overlap_fraction": fraction,
        "spacing_px": selection.spacing, "seed": selection.seed, "rule": SELECTION_RULE,
        "n_input": int(kept.size), "kept": selection.kept, "rejected": selection.rejected,
    }]
    meta["overlap"] = overlap
    return meta


def _file_record(path: Path, rel: str, n_positions: int | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {"path": rel, "sha256": sha256_file(path), "size_bytes": path.stat().st_size}
    if n_positions is not None:
        rec["n_positions"] = n_positions
    return rec


def _summary(split_metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "nearest_neighbour_mean": split_metrics["nearest_neighbour"]["mean"],
        "image_based_mean": split_metrics["image_based"]["mean"],
        "group_based_mean": split_metrics["group_based"]["mean"],
        "min_pair_distance_px": split_metrics["nearest_neighbour"]["distance_px"]["min"],
    }


def _build_view(dose: float, view: str, splits: dict[str, _SplitInput], config: OverlapConfig,
                staging: Path, created: str, probe: ProbeDiameter) -> dict[str, Any]:
    """Select, measure and stage one dose x view; return its manifest entry."""
    design = config.design
    fraction = float(design.overlap_views[view])
    spacing = view_spacing(design, view, int(splits["train"].arrays["probeGuess"].shape[0]))
    seed = int(design.rng_seeds["subsampling"])
    grouping_seed = int(design.rng_seeds["grouping"])
    selections = {s: select_min_spacing(splits[s].arrays["xcoords"], splits[s].arrays["ycoords"], spacing, seed)
                  for s in SPLITS}
    entry: dict[str, Any] = {
        "dose": float(dose), "view": view, "status": "ok", "overlap_fraction_target": fraction,
        "spacing_px": spacing, "seed": seed,
        "counts": {s: {"input": splits[s].n, "kept": selections[s].kept, "rejected": selections[s].rejected}
                   for s in SPLITS},
        "sources": {s: {"path_in_phase_c": splits[s].path_in_phase_c, "sha256": splits[s].sha256} for s in SPLITS},
    }
    floor = config.effective_min_positions
    short = [s for s in SPLITS if selections[s].kept < floor]
    if short:
        detail = ", ".join(f"{s} keeps {selections[s].kept} of {splits[s].n} positions" for s in short)
        entry["status"] = "skipped"
        entry["reason"] = (f"at spacing {spacing:g} px {detail}, fewer than --min-positions {floor} "
                           f"(a gs2 group needs a seed and its K={design.neighbor_count} nearest neighbours)")
        return entry

    metrics_config = MetricsConfig(diameter=probe.value_px, neighbor_count=int(design.neighbor_count),
                                   group_size=int(design.max_group_size), seed=grouping_seed)
    rel_dir = f"{dose_dirname(dose)}/{view}"
    final_dir = config.output_root / rel_dir
    split_metrics: dict[str, dict[str, Any]] = {}
    files: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        parent, sel = splits[split], selections[split]
        arrays = dict(parent.arrays)
        # Every per-position array goes through the same mask so rows stay aligned.
        for key in ("diffraction", "Y", "xcoords", "ycoords", "scan_index"):
            arrays[key] = parent.arrays[key][sel.mask]
        measured = measure_overlap(arrays["xcoords"], arrays["ycoords"], metrics_config)
        split_metrics[split] = {"n_input": parent.n, "kept": sel.kept, "rejected": sel.rejected, **measured}
        overlap_block = {"view": view, "overlap_fraction_target": fraction, "spacing_px": spacing,
                         "probe_diameter": probe.to_dict(), **split_metrics[split]}
        name = f"{view}_{split}.npz"
        meta = _view_metadata(parent, final_dir / name, view, fraction, sel, overlap_block, created,
                              grouping_seed)
        written = write_dataset(staging / rel_dir / name, arrays, meta)
        validate_dataset(written)
        files[split] = _file_record(written, f"{rel_dir}/{name}", sel.kept)

    metrics_doc = {
        "schema_version": "1.0", "kind": "overlap_metrics", "created": created, "producer": dict(PRODUCER),
        "dose": float(dose), "view": view, "overlap_fraction_target": fraction, "spacing_px": spacing,
        "seed": seed, "probe_diameter": probe.to_dict(), "splits": split_metrics,
    }
    metrics_name = f"{view}_metrics.json"
    metrics_path = write_json(staging / rel_dir / metrics_name, metrics_doc, "overlap_metrics")
    files["metrics"] = _file_record(metrics_path, f"{rel_dir}/{metrics_name}")
    entry.update({
        "directory": rel_dir, "files": files,
        "measured_overlap": {"probe_diameter_px": probe.value_px,
                             **{s: _summary(split_metrics[s]) for s in SPLITS}},
    })
    return entry


def _previous_entries(path: Path, run_sha: str) -> list[dict[str, Any]]:
    """Entries of an earlier manifest built from the same Phase C run (others are stale)."""
    if not path.exists():
        return []
    try:
        previous = validate(path, "overlap_manifest")
    except ManifestError as exc:
        raise OverlapError(f"{path}: existing manifest is unreadable ({exc}); use a fresh --output-root") from None
    if previous["phase_c"]["run_manifest_sha256"] != run_sha:
        return []
    return previous["views"]


def build_views(config: OverlapConfig) -> dict[str, Any]:
    """Build every requested dose x view and return the overlap manifest written.

    Raises
    ------
    OverlapError
        For a missing or inconsistent input; nothing is written in that case.
    """
    design = config.design
    views = list(config.views) if config.views is not None else list(design.overlap_views)
    unknown = [v for v in views if v not in design.overlap_views]
    if unknown:
        raise OverlapError(f"unknown view {unknown[0]!r} (known: {', '.join(design.overlap_views)})")
    if config.effective_min_positions < 1:
        raise OverlapError(f"--min-positions must be at least 1, got {config.effective_min_positions}")
    phase_c_root = Path(config.phase_c_root)
    run_manifest, run_sha = read_run_manifest(phase_c_root)
    records = _select_doses(run_manifest, phase_c_root, config.doses)
    created = creation_time()

    root = Path(config.output_root)
    if root.exists() and not root.is_dir():
        raise OverlapError(f"{root}: output root exists and is not a folder")
    made_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    manifest_path = root / MANIFEST_NAME
    try:
        previous = _previous_entries(manifest_path, run_sha)
        with Staging(root) as staging:
            entries = _build_all(records, views, phase_c_root, config, staging, created)
            manifest = _manifest(design, config, run_manifest, run_sha, created, previous, entries)
            write_json(staging / MANIFEST_NAME, manifest, "overlap_manifest")
            _commit(staging, root, entries)
    except BaseException:
        if made_root and not any(root.iterdir()):
            root.rmdir()  # a failed first run leaves no empty output folder behind
        raise
    return manifest


def _build_all(records: list[dict[str, Any]], views: list[str], phase_c_root: Path, config: OverlapConfig,
               staging: Path, created: str) -> list[dict[str, Any]]:
    """Stage every dose x view; return their manifest entries."""
    entries = []
    progress = tqdm(total=len(records) * len(views), desc="Phase D views", unit="view",
                    disable=not config.show_progress)
    with progress:
        for record in records:
            dose = float(record["dose"])
            splits = {s: _load_split(phase_c_root, record, s) for s in SPLITS}
            try:
                probe = measure_probe_diameter(splits["train"].arrays["probeGuess"])
            except ValueError as exc:
                raise OverlapError(f"{splits['train'].path}: key 'probeGuess': {exc}") from None
            for view in views:
                progress.set_postfix_str(f"{dose_dirname(dose)}/{view}")
                entries.append(_build_view(dose, view, splits, config, staging, created, probe))
                progress.update(1)
            del splits
    return entries


def _manifest(design: StudyDesign, config: OverlapConfig, run_manifest: dict[str, Any], run_sha: str,
              created: str, previous: list[dict[str, Any]], entries: list[dict[str, Any]]) -> dict[str, Any]:
    new_keys = {(e["dose"], e["view"]) for e in entries}
    merged = [e for e in previous if (e["dose"], e["view"]) not in new_keys] + entries
    merged.sort(key=lambda e: (e["dose"], list(design.overlap_views).index(e["view"])
                               if e["view"] in design.overlap_views else len(design.overlap_views), e["view"]))
    skipped = [{"dose": e["dose"], "view": e["view"], "reason": e["reason"]} for e in merged
               if e["status"] == "skipped"]
    phase_c = {"run_manifest_sha256": run_sha, "run_manifest_created": run_manifest["created"],
               "base_sample_sha256": run_manifest["base_sample"]["sha256"]}
    return {
        "schema_version": "1.0",
        "kind": "overlap_manifest",
        "created": created,
        "producer": dict(PRODUCER),
        "design": {
            "overlap_views": dict(design.overlap_views),
            "spacing_thresholds": dict(design.spacing_thresholds),
            "neighbor_count": int(design.neighbor_count),
            "gridsizes": list(design.gridsizes),
            "patch_size_pixels": int(design.patch_size_pixels),
            "rng_seeds": {k: int(design.rng_seeds[k]) for k in ("subsampling", "grouping")},
        },
        "parameters": {
            "min_positions": config.effective_min_positions,
            "selection": SELECTION_RULE,
            "probe_diameter": f"encircled energy: circle about the |P|^2 centroid holding {ENERGY_FRACTION:g} "
                              "of the probe intensity",
        },
        "phase_c": phase_c,
        "views": merged,
        "skipped_views": skipped,
        "skipped_count": len(skipped),
    }


def _commit(staging: Path, root: Path, entries: list[dict[str, Any]]) -> None:
    """Move staged view folders and the manifest into place.

    A view rebuilt by this run replaces its older folder; a view this run
    skipped loses its older folder too, so the files on disk always match the
    manifest. Old folders are set aside first and removed only at the end.
    """
    retired = Path(tempfile.mkdtemp(prefix=".old-", dir=root))
    moved: list[tuple[Path, Path]] = []
    try:
        for i, entry in enumerate(entries):
            rel = f"{dose_dirname(entry['dose'])}/{entry['view']}"
            target = root / rel
            if target.exists():
                os.replace(target, retired / str(i))
                moved.append((retired / str(i), target))
            if entry["status"] == "ok":
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / rel, target)
        os.replace(staging / MANIFEST_NAME, root / MANIFEST_NAME)
    except BaseException:
        # Put back whatever was set aside and not yet replaced: nothing old is lost.
        for old, target in moved:
            if not target.exists():
                os.replace(old, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)
