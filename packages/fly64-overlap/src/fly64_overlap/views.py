"""Phase D: derive each dose's overlap views from the Phase C files.

Layout written under the output root::

    dose_<int>/<view>/<view>_train.npz
    dose_<int>/<view>/<view>_test.npz
    dose_<int>/<view>/<view>_metrics.json
    overlap_manifest.json

With ``match_positions`` set, equal-positions controls go beside the views, in
the same layout: ``<view>_matched`` for every other view built and
``baseline_matched`` (thinned from the Phase C positions), each with as many
positions per split as the reference view.

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
from fly64_manifest import (
    ManifestError,
    inside_root,
    refuse_foreign_root,
    refuse_output_in_input,
    validate,
    write_json,
)
from fly64_overlap import __version__
from fly64_overlap.matching import select_compact
from fly64_overlap.metrics import MetricsConfig, measure_overlap
from fly64_overlap.probe import ENERGY_FRACTION, ProbeDiameter, measure_probe_diameter
from fly64_overlap.selection import select_min_spacing
from fly64_overlap.spacing import DEFAULT_SPACING_BASIS, SPACING_BASES, ViewSpacing, view_spacing

PRODUCER = {"package": "fly64-overlap", "version": __version__}
SPLITS = ("train", "test")
MANIFEST_NAME = "overlap_manifest.json"
SELECTION_RULE = ("greedy in a seeded random order (design rng_seeds['subsampling']): keep a position "
                  "unless an already kept one is closer than S = (1 - f) L, L = N (patch basis) or the "
                  "measured probe diameter D (probe basis)")
MATCHING_RULE = ("compact subset: the positions nearest the position closest to the centroid, ties broken by "
                 "the seeded visiting order (design rng_seeds['subsampling'])")
#: Name of the gs1 equal-positions control thinned from the Phase C positions.
BASELINE_CONTROL = "baseline"
MATCHED_SUFFIX = "_matched"


class OverlapError(ValueError):
    """A Phase D input is missing or inconsistent; the message names the file."""


class OverlapUsageError(OverlapError):
    """The command line asks for something this run cannot do (a usage error, exit 2)."""


def matched_name(view: str) -> str:
    """Folder and view name of the equal-positions control derived from ``view``."""
    return f"{view}{MATCHED_SUFFIX}"


def default_min_positions(design: StudyDesign) -> int:
    """Smallest split that can form gs2 groups: a seed plus its K nearest neighbours (K + 1)."""
    return int(design.neighbor_count) + 1


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
    spacing_basis : str
        ``patch`` (S = (1 - f) N, the design's rule) or ``probe`` (S = (1 - f) D, D the
        measured probe diameter, so f is about the footprint overlap reached).
    match_positions : str, optional
        A view to match: every other view built, and a gs1 control thinned from the
        Phase C positions, are also written with as many positions per split as it.
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
    spacing_basis: str = DEFAULT_SPACING_BASIS
    match_positions: str | None = None
    show_progress: bool = False
    design: StudyDesign = field(default_factory=get_study_design)

    @property
    def effective_min_positions(self) -> int:
        return self.min_positions if self.min_positions is not None else default_min_positions(self.design)

    @property
    def effective_views(self) -> list[str]:
        return list(self.views) if self.views is not None else list(self.design.overlap_views)

    def check(self) -> None:
        """Raise :class:`OverlapUsageError` for a request that cannot be met whatever the data."""
        known = list(self.design.overlap_views)
        unknown = [v for v in self.effective_views if v not in known]
        if unknown:
            raise OverlapUsageError(f"unknown view {unknown[0]!r} (known: {', '.join(known)})")
        if self.effective_min_positions < 1:
            raise OverlapUsageError(f"--min-positions must be at least 1, got {self.effective_min_positions}")
        if self.spacing_basis not in SPACING_BASES:
            raise OverlapUsageError(f"unknown spacing basis {self.spacing_basis!r} "
                                    f"(known: {', '.join(SPACING_BASES)})")
        if self.match_positions is not None:
            if self.match_positions not in known:
                raise OverlapUsageError(f"--match-positions {self.match_positions}: unknown view "
                                        f"(known: {', '.join(known)})")
            if self.match_positions not in self.effective_views:
                raise OverlapUsageError(f"--match-positions {self.match_positions}: that view is not built by "
                                        f"this run (add --view {self.match_positions})")


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


@dataclass(frozen=True)
class _Plan:
    """One dose x view with its positions chosen, before anything is written.

    ``masks`` select rows of the Phase C split; ``steps`` are the
    ``data_transformations`` records each split's file gains; ``extra`` holds the
    fields a control adds to its manifest entry and metrics (``matched_to``, ...).
    """

    view: str
    fraction: float | None
    spacing: ViewSpacing | None
    seed: int
    masks: dict[str, np.ndarray]
    steps: dict[str, list[dict[str, Any]]]
    extra: dict[str, Any] = field(default_factory=dict)

    def kept(self, split: str) -> int:
        return int(self.masks[split].sum())


def _spacing_fields(spacing: ViewSpacing | None) -> dict[str, Any]:
    if spacing is None:  # a control thinned from the Phase C positions follows no spacing rule
        return {"spacing_px": None, "spacing_basis": None, "spacing_basis_px": None}
    return spacing.to_dict()


def _plan_view(view: str, splits: dict[str, _SplitInput], config: OverlapConfig, probe: ProbeDiameter) -> _Plan:
    """Thin each split of ``view`` to positions at least S apart."""
    design = config.design
    spacing = view_spacing(design, view, int(splits["train"].arrays["probeGuess"].shape[0]),
                           config.spacing_basis, probe.value_px)
    seed = int(design.rng_seeds["subsampling"])
    masks, steps = {}, {}
    for split in SPLITS:
        sel = select_min_spacing(splits[split].arrays["xcoords"], splits[split].arrays["ycoords"],
                                 spacing.value_px, seed)
        masks[split] = sel.mask
        steps[split] = [{
            "step": "overlap_view", "producer": dict(PRODUCER), "view": view, "overlap_fraction": spacing.fraction,
            **spacing.to_dict(), "seed": seed, "rule": SELECTION_RULE,
            "n_input": int(sel.mask.size), "kept": sel.kept, "rejected": sel.rejected,
        }]
    return _Plan(view, spacing.fraction, spacing, seed, masks, steps)


def _plan_control(source: _Plan | None, reference: _Plan, splits: dict[str, _SplitInput],
                  seed: int) -> tuple[_Plan | None, str | None]:
    """Thin ``source`` (the Phase C positions when None) to the reference's count per split.

    Returns the plan, or None and the reason when the source has too few positions.
    """
    source_name = source.view if source is not None else BASELINE_CONTROL
    name = matched_name(source_name)
    masks, steps = {}, {}
    for split in SPLITS:
        parent = splits[split]
        pool = np.flatnonzero(source.masks[split]) if source is not None else np.arange(parent.n)
        target = reference.kept(split)
        if pool.size < target:
            return None, (f"{source_name} keeps {pool.size} {split} positions, fewer than the {target} of "
                          f"--match-positions {reference.view}")
        chosen = select_compact(parent.arrays["xcoords"][pool], parent.arrays["ycoords"][pool], target, seed)
        mask = np.zeros(parent.n, dtype=bool)
        mask[pool[chosen]] = True
        masks[split] = mask
        steps[split] = [*(source.steps[split] if source is not None else []), {
            "step": "match_positions", "producer": dict(PRODUCER), "view": name, "matched_to": reference.view,
            "matched_from": source_name, "seed": seed, "rule": MATCHING_RULE,
            "n_input": int(pool.size), "kept": target, "rejected": int(pool.size - target),
        }]
    extra = {"matched_to": reference.view, "matched_from": source_name}
    return _Plan(name, source.fraction if source is not None else None,
                 source.spacing if source is not None else None, seed, masks, steps, extra), None


def _entry(dose: float, plan: _Plan, splits: dict[str, _SplitInput]) -> dict[str, Any]:
    """The manifest entry of a planned view, without files (status ok)."""
    return {
        "dose": float(dose), "view": plan.view, "status": "ok", "overlap_fraction_target": plan.fraction,
        **_spacing_fields(plan.spacing), "seed": plan.seed, **plan.extra,
        "counts": {s: {"input": splits[s].n, "kept": plan.kept(s), "rejected": splits[s].n - plan.kept(s)}
                   for s in SPLITS},
        "sources": {s: {"path_in_phase_c": splits[s].path_in_phase_c, "sha256": splits[s].sha256} for s in SPLITS},
    }


def _view_metadata(parent: _SplitInput, out_path: Path, plan: _Plan, split: str, overlap: dict[str, Any],
                   created: str, grouping_seed: int) -> dict[str, Any]:
    """Parent metadata with producer, sources, seeds, counts and the overlap steps updated."""
    meta = dict(parent.meta)
    kept = plan.masks[split]
    diffraction = parent.arrays["diffraction"][kept].astype(np.float64)
    scale = float(meta["intensity_scale"])
    meta["created"] = created
    meta["producer"] = dict(PRODUCER)
    meta["measured_mean_counts"] = (float(((diffraction * scale) ** 2).sum(axis=(1, 2)).mean())
                                    if diffraction.size else 0.0)
    meta["sources"] = [{"path": Path(os.path.relpath(parent.path.resolve(), out_path.parent.resolve())).as_posix(),
                        "sha256": parent.sha256}]
    meta["seeds"] = {**meta.get("seeds", {}), "subsampling": plan.seed, "grouping": grouping_seed}
    meta["view"] = plan.view
    meta["data_transformations"] = [*meta["data_transformations"], *plan.steps[split]]
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


def _short_reason(plan: _Plan, splits: dict[str, _SplitInput], config: OverlapConfig) -> str | None:
    """Why a planned view keeps too few positions to form gs2 groups, or None."""
    floor = config.effective_min_positions
    short = [s for s in SPLITS if plan.kept(s) < floor]
    if not short:
        return None
    detail = ", ".join(f"{s} keeps {plan.kept(s)} of {splits[s].n} positions" for s in short)
    where = (f"at spacing {plan.spacing.value_px:g} px ({plan.spacing.basis} basis)" if plan.spacing is not None
             else "after thinning")
    return (f"{where} {detail}, fewer than --min-positions {floor} "
            f"(a gs2 group needs a seed and its K={config.design.neighbor_count} nearest neighbours)")


def _skipped(entry: dict[str, Any], reason: str) -> dict[str, Any]:
    return {**entry, "status": "skipped", "reason": reason}


def _write_view(entry: dict[str, Any], plan: _Plan, splits: dict[str, _SplitInput], config: OverlapConfig,
                staging: Path, created: str, probe: ProbeDiameter) -> dict[str, Any]:
    """Measure and stage one planned dose x view; return its manifest entry with files."""
    design = config.design
    dose, view = entry["dose"], plan.view
    grouping_seed = int(design.rng_seeds["grouping"])
    metrics_config = MetricsConfig(diameter=probe.value_px, neighbor_count=int(design.neighbor_count),
                                   group_size=int(design.max_group_size), seed=grouping_seed)
    rel_dir = f"{dose_dirname(dose)}/{view}"
    final_dir = config.output_root / rel_dir
    described = {"view": view, "overlap_fraction_target": plan.fraction, **_spacing_fields(plan.spacing),
                 **plan.extra}
    split_metrics: dict[str, dict[str, Any]] = {}
    files: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        parent, mask = splits[split], plan.masks[split]
        arrays = dict(parent.arrays)
        # Every per-position array goes through the same mask so rows stay aligned.
        for key in ("diffraction", "Y", "xcoords", "ycoords", "scan_index"):
            arrays[key] = parent.arrays[key][mask]
        measured = measure_overlap(arrays["xcoords"], arrays["ycoords"], metrics_config)
        kept = plan.kept(split)
        split_metrics[split] = {"n_input": parent.n, "kept": kept, "rejected": parent.n - kept, **measured}
        overlap_block = {**described, "probe_diameter": probe.to_dict(), **split_metrics[split]}
        name = f"{view}_{split}.npz"
        meta = _view_metadata(parent, final_dir / name, plan, split, overlap_block, created, grouping_seed)
        written = write_dataset(staging / rel_dir / name, arrays, meta)
        validate_dataset(written)
        files[split] = _file_record(written, f"{rel_dir}/{name}", kept)

    metrics_doc = {
        "schema_version": "1.1", "kind": "overlap_metrics", "created": created, "producer": dict(PRODUCER),
        "dose": float(dose), **described, "seed": plan.seed, "probe_diameter": probe.to_dict(),
        "splits": split_metrics,
    }
    metrics_name = f"{view}_metrics.json"
    metrics_path = write_json(staging / rel_dir / metrics_name, metrics_doc, "overlap_metrics")
    files["metrics"] = _file_record(metrics_path, f"{rel_dir}/{metrics_name}")
    return {
        **entry, "directory": rel_dir, "files": files,
        "measured_overlap": {"probe_diameter_px": probe.value_px,
                             **{s: _summary(split_metrics[s]) for s in SPLITS}},
    }


def _build_dose(dose: float, views: list[str], splits: dict[str, _SplitInput], config: OverlapConfig,
                staging: Path, created: str, probe: ProbeDiameter, progress: tqdm) -> list[dict[str, Any]]:
    """Every requested view of one dose, then its equal-positions controls; their manifest entries."""
    entries: list[dict[str, Any]] = []
    plans: dict[str, _Plan] = {}
    reasons: dict[str, str] = {}
    for view in views:
        progress.set_postfix_str(f"{dose_dirname(dose)}/{view}")
        plan = plans[view] = _plan_view(view, splits, config, probe)
        entry = _entry(dose, plan, splits)
        reason = _short_reason(plan, splits, config)
        if reason is None:
            entries.append(_write_view(entry, plan, splits, config, staging, created, probe))
        else:
            entries.append(_skipped(entry, reason))
            reasons[view] = reason
        progress.update(1)
    if config.match_positions is None:
        return entries
    reference = plans[config.match_positions]
    if reference.view in reasons:
        raise OverlapUsageError(f"--match-positions {reference.view}: that view is skipped at dose "
                                f"{dose:g} ({reasons[reference.view]}); nothing written")
    seed = int(config.design.rng_seeds["subsampling"])
    for source_name in [BASELINE_CONTROL, *(v for v in views if v != reference.view)]:
        source = plans.get(source_name)
        if source_name in reasons:
            entries.append(_skipped(_control_stub(dose, source, reference, splits),
                                    f"{source_name} itself is skipped: {reasons[source_name]}"))
            continue
        plan, reason = _plan_control(source, reference, splits, seed)
        if plan is None:
            entries.append(_skipped(_control_stub(dose, source, reference, splits), str(reason)))
        else:
            entries.append(_write_view(_entry(dose, plan, splits), plan, splits, config, staging, created, probe))
    return entries


def _control_stub(dose: float, source: _Plan | None, reference: _Plan,
                  splits: dict[str, _SplitInput]) -> dict[str, Any]:
    """Manifest entry of a control that cannot be built: the source's own counts under the control's name."""
    base = source if source is not None else _Plan(BASELINE_CONTROL, None, None, reference.seed,
                                                   {s: np.ones(splits[s].n, dtype=bool) for s in SPLITS}, {})
    return {**_entry(dose, base, splits), "view": matched_name(base.view), "matched_to": reference.view,
            "matched_from": base.view}


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
    OverlapUsageError
        For a request the data cannot meet (``match_positions`` naming a view that
        is skipped); nothing is written either.
    """
    design = config.design
    config.check()
    views = config.effective_views
    phase_c_root = Path(config.phase_c_root)
    run_manifest, run_sha = read_run_manifest(phase_c_root)
    records = _select_doses(run_manifest, phase_c_root, config.doses)
    created = creation_time()

    root = Path(config.output_root)
    if root.exists() and not root.is_dir():
        raise OverlapError(f"{root}: output root exists and is not a folder")
    # Phase D replaces whole view folders: never inside Phase C's root or another phase's,
    # and never through a dose or view folder that is a link (the link's target would be replaced).
    refuse_output_in_input(root, {"--phase-c-root": phase_c_root}, output_flag="--output-root")
    refuse_foreign_root(root, MANIFEST_NAME, output_flag="--output-root")
    for record in records:
        for view in (*views, *(matched_name(v) for v in views), matched_name(BASELINE_CONTROL)):
            inside_root(root / dose_dirname(record["dose"]) / view, root, what="Phase D view folder")
    made_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    manifest_path = root / MANIFEST_NAME
    try:
        previous = _previous_entries(manifest_path, run_sha)
        with Staging(root) as staging:
            entries = _build_all(records, views, phase_c_root, config, staging, created)
            stale = _stale_controls(previous, entries)
            manifest = _manifest(design, config, run_manifest, run_sha, created, previous, entries, stale)
            write_json(staging / MANIFEST_NAME, manifest, "overlap_manifest")
            _commit(staging, root, [*entries, *({**e, "status": "retired"} for e in stale)])
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
            entries.extend(_build_dose(dose, views, splits, config, staging, created, probe, progress))
            del splits
    return entries


def _stale_controls(previous: list[dict[str, Any]], entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Earlier controls of a dose rebuilt now that this run does not rebuild.

    Their sources may just have changed (another basis, another reference), so
    they are dropped from the manifest and their folders removed rather than kept
    out of step with the views they were thinned from.
    """
    doses = {e["dose"] for e in entries}
    new_keys = {(e["dose"], e["view"]) for e in entries}
    return [e for e in previous if "matched_to" in e and e["dose"] in doses
            and (e["dose"], e["view"]) not in new_keys]


def _manifest(design: StudyDesign, config: OverlapConfig, run_manifest: dict[str, Any], run_sha: str,
              created: str, previous: list[dict[str, Any]], entries: list[dict[str, Any]],
              stale: list[dict[str, Any]]) -> dict[str, Any]:
    new_keys = {(e["dose"], e["view"]) for e in entries}
    dropped = {(e["dose"], e["view"]) for e in stale}
    merged = [e for e in previous if (e["dose"], e["view"]) not in new_keys | dropped] + entries
    merged.sort(key=lambda e: (e["dose"], list(design.overlap_views).index(e["view"])
                               if e["view"] in design.overlap_views else len(design.overlap_views), e["view"]))
    skipped = [{"dose": e["dose"], "view": e["view"], "reason": e["reason"]} for e in merged
               if e["status"] == "skipped"]
    phase_c = {"run_manifest_sha256": run_sha, "run_manifest_created": run_manifest["created"],
               "base_sample_sha256": run_manifest["base_sample"]["sha256"]}
    return {
        "schema_version": "1.1",
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
            "matching": MATCHING_RULE,
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
    for entry in entries:  # checked again before anything moves: a folder replaced must be a real one
        inside_root(root / dose_dirname(entry["dose"]) / entry["view"], root, what="Phase D view folder")
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
