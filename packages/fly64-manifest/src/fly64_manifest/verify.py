"""Check a study on disk against what its manifests recorded."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fly64_manifest.io import ManifestError, read_json, sha256_file
from fly64_manifest.loaders import (
    ITERATIVE_MANIFEST,
    OVERLAP_MANIFEST,
    RUN_MANIFEST,
    SKIP_SUMMARY,
    TRAINING_MANIFEST,
    load_iterative_manifest,
    load_overlap_manifest,
    load_run_manifest,
    load_skip_summary,
    load_training_manifest,
)
from fly64_manifest.models import FileRecord, IterativeJob, IterativeManifest, TrainingJob, TrainingManifest
from fly64_manifest.schema import KINDS, check_version, schema_problems

#: fly64-train's bundle file name in a job folder.
BUNDLE_NAME = "wts.h5.zip"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a study: the file concerned and what is wrong with it."""

    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


def _document_problems(path: Path, kind: str) -> list[Problem]:
    """Version and every schema violation of one document (all of them, not the first)."""
    try:
        doc = read_json(path)
        check_version(doc, kind, str(path))
    except ManifestError as exc:
        return [Problem(str(path), str(exc).removeprefix(f"{path}: "))]
    if kind not in KINDS:
        return []
    return [Problem(str(path), f"{kind} invalid at {line}") for line in schema_problems(doc, kind)]


def _load(loader, path: Path, problems: list[Problem]) -> Any:
    """Run a loader, turning its (one-line) refusal into a problem."""
    try:
        return loader(path)
    except ManifestError as exc:
        file, _, message = str(exc).partition(": ")
        problems.append(Problem(file, message))
        return None


def _check_hash(path: Path, sha256: str | None, size: int | None, what: str) -> list[Problem]:
    if not path.is_file():
        return [Problem(str(path), f"{what} is missing")]
    actual_sha, actual_size = sha256_file(path)
    found = []
    if size is not None and actual_size != size:
        found.append(Problem(str(path), f"{what} size {actual_size} bytes != recorded {size}"))
    if sha256 is not None and actual_sha != sha256:
        found.append(Problem(str(path), f"{what} sha256 {actual_sha} != recorded {sha256}"))
    return found


def _check_file_records(records: tuple[FileRecord, ...], rehash: bool) -> list[Problem]:
    found = []
    for rec in records:
        if rehash:
            found += _check_hash(rec.path, rec.sha256, rec.size_bytes, "data file")
        elif not rec.path.is_file():
            found.append(Problem(str(rec.path), "data file is missing"))
    return found


def _check_phase_d_source(overlap: Any, run_manifest_path: Path) -> list[Problem]:
    """Phase D records the sha256 of the run manifest it read; a re-run Phase C makes its views stale."""
    phase_c = overlap.raw.get("phase_c")
    recorded = phase_c.get("run_manifest_sha256") if hasattr(phase_c, "get") else None
    if recorded is None:
        return []
    actual, _ = sha256_file(run_manifest_path)
    if actual == recorded:
        return []
    return [Problem(str(overlap.path), f"built from a run_manifest.json with sha256 {recorded}, but "
                                       f"{run_manifest_path} now has {actual} (re-run Phase D)")]


def _phase_dirs(study_root: Path, artifact_root: Path) -> dict[str, Path]:
    """The roots a study's Phase E or F manifest must record: the study's own phase folders."""
    return {
        "phase_c_root": (study_root / RUN_MANIFEST[1]).absolute(),
        "phase_d_root": (study_root / OVERLAP_MANIFEST[1]).absolute(),
        "artifact_root": artifact_root,
    }


def _root_problems(manifest: TrainingManifest | IterativeManifest, phase_dirs: dict[str, Path] | None,
                   recorded: Mapping[str, Any], field_prefix: str) -> list[Problem]:
    """Recorded roots (``recorded[name]``, reported as ``field_prefix + name``) that are not ``phase_dirs``."""
    found = []
    # In a study the recorded roots must be the study's own phase folders; an absolute
    # root left over from before the study was moved points at someone else's data.
    for name, expected in (phase_dirs or {}).items():
        actual = getattr(manifest, name)
        if Path(actual).resolve() != Path(expected).resolve():
            found.append(Problem(str(manifest.path), f"{field_prefix}{name} {recorded[name]!r} resolves to {actual}, "
                                                     f"not {expected}"))
    return found


def _job_label(job: TrainingJob | IterativeJob) -> str:
    """How problems name a job: ``dense gs1 seed 3 at dose 1000``."""
    seed = "" if job.seed is None else f" seed {job.seed}"
    return f"{job.view} gs{job.gridsize}{seed} at dose {job.dose:g}"


def _job_dir_problems(src: str, root: Path, job: TrainingJob | IterativeJob, label: str) -> list[Problem]:
    """A job folder other than ``<root>/dose_<d>/<view>/gs<g>[/seed_<s>]``, where the study layout puts it."""
    expected_dir = root / f"dose_{int(job.dose)}" / job.view / f"gs{job.gridsize}"
    if job.seed is not None:
        expected_dir = expected_dir / f"seed_{job.seed}"
    if job.job_dir == expected_dir:
        return []
    return [Problem(src, f"job {label} has job_dir {job.raw['job_dir']!r}, "
                         f"expected {os.path.relpath(expected_dir, root)!r}")]


def _check_training(manifest: TrainingManifest, phase_dirs: dict[str, Path] | None) -> list[Problem]:
    found: list[Problem] = []
    src = str(manifest.path)
    found += _root_problems(manifest, phase_dirs, manifest.raw, "")
    for job in manifest.jobs:
        label = _job_label(job)
        found += _job_dir_problems(src, manifest.root, job, label)
        for name in ("train_data_path", "test_data_path"):
            if not getattr(job, name).is_file():
                found.append(Problem(str(getattr(job, name)), f"{name} of job {label} is missing"))
        if job.bundle_path is not None:
            found += _check_hash(job.bundle_path, job.bundle_sha256, job.bundle_size_bytes, f"bundle of job {label}")
        elif job.status == "dry_run" and (job.job_dir / BUNDLE_NAME).is_file():
            # A dry run once wrote its plan over a finished job's entry: the bundle is there, its record gone.
            found.append(Problem(src, f"job {label} is recorded as a dry run but its folder holds a bundle "
                                      f"({BUNDLE_NAME}): its recorded result was lost; rerun that job"))
        for artifact in job.artifacts:
            found += _check_hash(artifact.path, artifact.sha256, artifact.size_bytes,
                                 f"{artifact.recorded} of job {label}")
    if manifest.skipped_count != len(manifest.skipped_views):
        found.append(Problem(src, f"skipped_count {manifest.skipped_count} != "
                                  f"{len(manifest.skipped_views)} skipped_views"))
    return found


def _check_skip_summary(manifest: TrainingManifest, problems: list[Problem]) -> None:
    summary = _load(load_skip_summary, manifest.skip_summary_path, problems)
    if summary is None:
        return
    src = str(summary.path)
    if summary.skipped_count != len(summary.skipped_views):
        problems.append(Problem(src, f"skipped_count {summary.skipped_count} != "
                                     f"{len(summary.skipped_views)} skipped_views"))
    # Order is not meaningful; the multiset of (dose, view, gridsize, reason) is.
    ours = Counter((*s.key, s.reason) for s in summary.skipped_views)
    theirs = Counter((*s.key, s.reason) for s in manifest.skipped_views)
    for extra in sorted((ours - theirs).elements(), key=str):
        problems.append(Problem(src, f"skip {extra[1]} gs{extra[2]} at dose {extra[0]:g} ({extra[3]!r}) "
                                     f"is not in {manifest.path.name}"))
    for missing in sorted((theirs - ours).elements(), key=str):
        problems.append(Problem(src, f"lacks skip {missing[1]} gs{missing[2]} at dose {missing[0]:g} "
                                     f"({missing[3]!r}) recorded in {manifest.path.name}"))


def verify(root: str | os.PathLike, *, rehash_data: bool = False) -> list[Problem]:
    """Check a study root (or a bare Phase E or Phase F artifact root) against its manifests.

    For every bundle and evaluation artifact (``reconstruction.h5``) a job records (Phase E, and
    Phase F's ``iterative_manifest.json`` when ``phase_f*/`` exists),
    re-hash it and compare sha256 and size; check
    that ``skip_summary.json`` holds exactly the manifest's ``skipped_views``; refuse
    any recorded path that is absolute or escapes its root; check every data file a
    manifest records exists (and, with ``rehash_data``, matches its recorded hash).

    Parameters
    ----------
    root
        ``<root>`` with ``phase_c/``, ``phase_d/``, ``phase_e/``; or a folder holding
        ``training_manifest.json`` directly.
    rehash_data
        Also re-hash the Phase C and D data files (slow for a full-size study).

    Returns
    -------
    list of Problem
        Empty when everything matches. ``str(problem)`` is one line naming the file.
    """
    root = Path(root)
    problems: list[Problem] = []
    if (root / ITERATIVE_MANIFEST[0]).is_file() and not (root / TRAINING_MANIFEST[0]).is_file():
        return _verify_phase_f(root / ITERATIVE_MANIFEST[0], None)  # a bare Phase F artifact root
    bare = (root / TRAINING_MANIFEST[0]).is_file()
    training_path = root / TRAINING_MANIFEST[0] if bare else root / TRAINING_MANIFEST[1] / TRAINING_MANIFEST[0]
    upstream = [] if bare else [
        (root / RUN_MANIFEST[1] / RUN_MANIFEST[0], "run_manifest", load_run_manifest),
        (root / OVERLAP_MANIFEST[1] / OVERLAP_MANIFEST[0], "overlap_manifest", load_overlap_manifest),
    ]
    loaded: dict[str, Any] = {}
    for path, kind, loader in upstream:
        if not path.is_file():
            continue  # a study may not have reached this phase; Phase E's data checks catch real gaps
        doc_problems = _document_problems(path, kind)
        problems += doc_problems
        if not doc_problems and (manifest := _load(loader, path, problems)) is not None:
            loaded[kind] = manifest
            problems += _check_file_records(manifest.files(), rehash_data)
    if "run_manifest" in loaded and "overlap_manifest" in loaded:
        problems += _check_phase_d_source(loaded["overlap_manifest"], loaded["run_manifest"].path)

    # One artifact root per backend: phase_e/ (torch) and phase_e_<backend>/ (e.g. phase_e_tensorflow).
    found = [] if bare else sorted(root.glob(f"{TRAINING_MANIFEST[1]}*/{TRAINING_MANIFEST[0]}"))
    for path in found or [training_path]:
        problems += _verify_phase_e(root, path, bare)
    # Phase F is optional (a study may stop at Phase E); each phase_f*/ root present is checked.
    for path in [] if bare else sorted(root.glob(f"{ITERATIVE_MANIFEST[1]}*/{ITERATIVE_MANIFEST[0]}")):
        problems += _verify_phase_f(path, root)
    return problems


def _verify_phase_f(path: Path, study_root: Path | None) -> list[Problem]:
    """Problems of one Phase F artifact root: its manifest, each job's folder, test split and artifacts."""
    problems = _document_problems(path, "iterative_manifest")
    if problems:
        return problems  # an invalid manifest cannot be trusted to say where the artifacts are
    manifest = _load(load_iterative_manifest, path, problems)
    if manifest is None:
        return problems
    phase_dirs = None if study_root is None else _phase_dirs(study_root, manifest.root)
    return _check_iterative(manifest, phase_dirs)


def _check_iterative(manifest: IterativeManifest, phase_dirs: dict[str, Path] | None) -> list[Problem]:
    found: list[Problem] = []
    src = str(manifest.path)
    found += _root_problems(manifest, phase_dirs, manifest.raw["roots"], "roots/")
    for job in manifest.jobs:
        label = _job_label(job)
        found += _job_dir_problems(src, manifest.root, job, label)
        if not job.test_data_path.is_file():
            found.append(Problem(str(job.test_data_path), f"test_data_path of iterative job {label} is missing"))
        if job.reconstruction_path is not None:
            found += _check_hash(job.reconstruction_path, job.reconstruction_sha256, job.reconstruction_size_bytes,
                                 f"reconstruction of iterative job {label}")
        for artifact in job.artifacts:
            if artifact.path == job.reconstruction_path:
                continue  # hashed above
            found += _check_hash(artifact.path, artifact.sha256, artifact.size_bytes,
                                 f"{artifact.recorded} of iterative job {label}")
    return found


def _verify_phase_e(root: Path, training_path: Path, bare: bool) -> list[Problem]:
    """Problems of one Phase E artifact root (its manifest, skip summary, bundles and artifacts)."""
    problems: list[Problem] = []
    if not training_path.is_file():
        problems.append(Problem(str(training_path), "training manifest is missing"))
        return problems
    doc_problems = _document_problems(training_path, "training_manifest")
    problems += doc_problems
    summary_path = training_path.parent / SKIP_SUMMARY[0]
    if summary_path.is_file():
        problems += _document_problems(summary_path, "skip_summary")
    else:
        problems.append(Problem(str(summary_path), "skip summary is missing"))
    if doc_problems:
        return problems  # an invalid manifest cannot be trusted to say where the bundles are
    manifest = _load(load_training_manifest, training_path, problems)
    if manifest is None:
        return problems
    phase_dirs = None if bare else _phase_dirs(root, manifest.root)
    problems += _check_training(manifest, phase_dirs)
    if summary_path.is_file() and not any(p.file == str(summary_path) for p in problems):
        _check_skip_summary(manifest, problems)
    return problems
