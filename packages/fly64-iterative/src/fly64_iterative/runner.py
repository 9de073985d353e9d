"""Phase F study runner: plan (Phase E's job matrix and skips) -> check inputs -> run each job -> record.

The matrix, filters, skipped-view handling and input checks are fly64-train's
framework-free study layer, imported, so Phase F reconstructs exactly the test
splits Phase E scores. ``iterative_manifest.json`` is rewritten atomically after
every job (a killed run loses only the job it was running); a rerun keeps the
other jobs' entries and skips a job whose entry is a success with the same engine
settings and whose files still match their recorded sha256.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from fly64_data.contract import utc_now
from fly64_data.design import StudyDesign, get_study_design
from fly64_iterative import __version__
from fly64_iterative.engine import EngineConfig
from fly64_iterative.job import JobRecord, JobSpec, run_job
from fly64_iterative.pinn_start import PinnStart, check_bundle, locate_bundle, start_options
from fly64_manifest import (
    ManifestError,
    SkippedView,
    load_training_manifest,
    read_json,
    sha256_file,
    validate,
    write_json,
)
from fly64_manifest.loaders import OVERLAP_MANIFEST, RUN_MANIFEST
from fly64_train.studies.inputs import check_file, read_manifest, read_phase_d
from fly64_train.studies.matrix import BASELINE, Job, Located, build_matrix, filter_jobs, locate

MANIFEST_NAME = "iterative_manifest.json"
KIND = "iterative_manifest"


@dataclass(frozen=True)
class IterativeRunConfig:
    """What one ``fly64-iterative run`` asks for."""

    phase_c_root: Path
    """Phase C output folder (``run_manifest.json``, baseline test splits)."""
    phase_d_root: Path
    """Phase D output folder (``overlap_manifest.json``, the views' test splits)."""
    artifact_root: Path
    """Where job folders and ``iterative_manifest.json`` go; nothing is written anywhere else."""
    engine: EngineConfig = EngineConfig()
    """pty-chi settings, the same for every job."""
    doses: Sequence[float] | None = None
    """Only these doses (``None``: every dose of the design)."""
    views: Sequence[str] | None = None
    """Only these views."""
    seeds: Sequence[int] | None = None
    """Replicate seeds: one job per cell and seed when several (Phase E's layout); one seed seeds the run."""
    information: bool = True
    """Also reconstruct from half A of the photons for the information score."""
    pinn_start_root: Path | None = None
    """A Phase E root: start each fit from the PINN of the same cell ("PINN + LSQML",
    :mod:`fly64_iterative.pinn_start`); ``None``: from a flat object (the study's Phase F)."""

    def check(self) -> None:
        """Raise ValueError for a contradiction, naming it."""
        self.engine.check()
        if self.doses is not None and not self.doses or self.views is not None and not self.views:
            raise ValueError("a filter, when given, names at least one value")
        if self.seeds is not None and (not self.seeds or len(set(self.seeds)) != len(self.seeds)
                                       or min(self.seeds) < 0):
            raise ValueError(f"seeds must be distinct non-negative integers, got {list(self.seeds)}")


@dataclass
class RunOutcome:
    """What a run did."""

    manifest_path: Path
    ran: dict[tuple, JobRecord]
    """Jobs run now, by key."""
    reused: list[Job]
    """Jobs already finished by an earlier run with the same settings (not run again)."""
    skipped: list[SkippedView]

    @property
    def failed(self) -> int:
        return sum(1 for rec in self.ran.values() if rec.failed)


def plan(cfg: IterativeRunConfig, design: StudyDesign | None = None) -> tuple[list[JobSpec], list[SkippedView]]:
    """The runnable jobs and the skipped views (reads manifests, writes nothing); Phase E's matrix."""
    design = design or get_study_design()
    phase_c, phase_d = Path(cfg.phase_c_root), Path(cfg.phase_d_root)
    views = list(cfg.views) if cfg.views is not None else None
    overlap = read_phase_d(phase_d, filter_jobs(build_matrix(design), cfg.doses, views), views)
    jobs = filter_jobs(build_matrix(design, overlap, list(cfg.seeds) if cfg.seeds else None), cfg.doses, views)
    found = [locate(job, phase_c, phase_d, overlap) for job in jobs]
    sigma = float(design.metrics_config["ms_ssim_sigma"])
    # Read once for every job (it is validated as a whole): the bundles a PINN start comes from.
    trained = load_training_manifest(cfg.pinn_start_root) if cfg.pinn_start_root is not None else None
    specs = []
    for item in found:
        if not isinstance(item, Located):
            continue
        seed = item.job.seed if item.job.seed is not None else (cfg.seeds[0] if cfg.seeds else cfg.engine.seed)
        start = None
        if trained is not None:
            bundle, digest = locate_bundle(trained, item.job, item.test_path)
            start = PinnStart(bundle=bundle, sha256=digest, device=cfg.engine.device)
        specs.append(JobSpec(job=item.job, test_path=item.test_path,
                             job_dir=Path(cfg.artifact_root) / item.job.job_dir,
                             artifact_root=Path(cfg.artifact_root),
                             engine=replace(cfg.engine, seed=seed), ms_ssim_sigma=sigma,
                             information=cfg.information, start=start))
    skips = {(s.dose, s.view, s.gridsize): s for s in found if isinstance(s, SkippedView)}
    return specs, list(skips.values())


def verify_test_splits(specs: Sequence[JobSpec], phase_c_root: Path, phase_d_root: Path) -> None:
    """Each test split must be the file Phase C / D recorded (sha256, dose), before anything is written."""
    from fly64_manifest import load_run_manifest

    run = None
    overlap = read_phase_d(Path(phase_d_root), [spec.job for spec in specs])
    for spec in specs:
        if spec.job.view == BASELINE:
            run = run or read_manifest(load_run_manifest, Path(phase_c_root) / RUN_MANIFEST[0])
            record, manifest = run.dose(spec.job.dose).test, run.path
        else:
            if overlap is None:
                raise ManifestError(f"{phase_d_root}: no {OVERLAP_MANIFEST[0]} to check {spec.test_path.name} against")
            record, manifest = overlap.view(spec.job.dose, spec.job.view).test, overlap.path
        check_file(spec.test_path, record, manifest, spec.job.dose)


def run_study(cfg: IterativeRunConfig, out: IO[str] | None = None, design: StudyDesign | None = None) -> RunOutcome:
    """Reconstruct every selected job not already finished; record each as it ends.

    Raises (before anything is written) for a missing Phase C file, an unreadable
    manifest or a test split that is not the one its producer recorded.
    """
    out = out or sys.stdout
    cfg.check()
    specs, skipped = plan(cfg, design)
    for spec in specs:
        spec.check()
    verify_test_splits(specs, Path(cfg.phase_c_root), Path(cfg.phase_d_root))
    for spec in specs:
        if spec.start is not None:
            check_bundle(spec.start)
    root = Path(cfg.artifact_root)
    manifest_path = root / MANIFEST_NAME
    entries = _previous_entries(manifest_path)
    _refuse_mixed_starts(manifest_path, entries, pinn=cfg.pinn_start_root is not None)
    ran: dict[tuple, JobRecord] = {}
    reused: list[Job] = []
    _write(cfg, manifest_path, entries, skipped)
    for spec in specs:
        key = spec.job.key
        if _finished(entries.get(key), spec):
            reused.append(spec.job)
            print(f"{spec.job.label()}: done already ({spec.job_dir / 'reconstruction.h5'}), not run again", file=out)
            continue
        record = run_job(spec)
        ran[key] = record
        entries[key] = entry(spec, record, cfg)
        _write(cfg, manifest_path, entries, skipped)
        print(_line(spec, record), file=out)
    for skip in skipped:
        print(f"skipped: dose {skip.dose:g} {skip.view} gs{skip.gridsize}: {skip.reason}", file=out)
    outcome = RunOutcome(manifest_path, ran, reused, skipped)
    print(f"manifest: {manifest_path} ({len(ran)} run, {len(reused)} done already, {len(skipped)} skipped"
          f"{f', {outcome.failed} failed' if outcome.failed else ''})", file=out)
    return outcome


def entry(spec: JobSpec, record: JobRecord, cfg: IterativeRunConfig) -> dict[str, Any]:
    """The manifest entry of one job (schema ``iterative_manifest`` #/$defs/job)."""
    job = spec.job
    data_root, root = ("phase_c_root", cfg.phase_c_root) if job.view == BASELINE else ("phase_d_root", cfg.phase_d_root)
    success = record.status == "success"
    h5 = next((a for a in record.artifacts if a["path"] == "reconstruction.h5"), None) if success else None
    doc: dict[str, Any] = {
        "dose": job.dose, "view": job.view, "gridsize": job.gridsize,
        **({"seed": job.seed} if job.seed is not None else {}),
        "job_dir": job.job_dir, "data_root": data_root,
        "test_data_path": Path(spec.test_path).relative_to(Path(root)).as_posix(),
        "status": record.status, "error": record.error,
        "engine": spec.engine.engine, "engine_options": record.options or _settings(spec),
        "engine_version": _ptychi_version(),
        "epochs": spec.engine.epochs, "batch_size": spec.engine.batch_size,
        "noise_model": spec.engine.resolved_noise_model, "device": record.device,
        **({"device_name": record.device_name} if record.device_name else {}),
        "wall_time_s": record.wall_time_s, "duration_s": record.duration_s, "n_patterns": record.n_patterns,
        "reconstruction_path": h5["path"] if h5 else None, "reconstruction_sha256": h5["sha256"] if h5 else None,
        "reconstruction_size_bytes": h5["size_bytes"] if h5 else None,
        "artifacts": record.artifacts if success else [],
        "metrics": record.metrics.to_json() if success and record.metrics is not None else None,
    }
    return doc


def _settings(spec: JobSpec) -> dict[str, Any]:
    """What a job that recorded no options of its own (it failed) was asked to run, its start included."""
    from fly64_iterative.engine import engine_options

    return {**engine_options(spec.engine), **(start_options(spec.start) if spec.start is not None else {})}


def _ptychi_version() -> str:
    from fly64_iterative.ptychi_import import PTYCHI_VERSION

    return PTYCHI_VERSION


def _key_of(raw: dict[str, Any]) -> tuple:
    return (float(raw["dose"]), raw["view"], int(raw["gridsize"]), raw.get("seed"))


def _previous_entries(path: Path) -> dict[tuple, dict[str, Any]]:
    """The jobs an earlier run recorded (kept; this run upserts its own)."""
    if not path.is_file():
        return {}
    doc = validate(read_json(path), KIND, source=str(path))
    return {_key_of(raw): raw for raw in doc["jobs"]}


def _refuse_mixed_starts(path: Path, entries: dict[tuple, dict[str, Any]], *, pinn: bool) -> None:
    """One artifact root holds one method: flat-start LSQML or PINN + LSQML, never both."""
    other = [raw for raw in entries.values()
             if bool((raw.get("engine_options") or {}).get("pinn_bundle_sha256")) != pinn]
    if other:
        have, asked = ("flat-start", "PINN-start") if pinn else ("PINN-start", "flat-start")
        raise ManifestError(f"{path}: holds {len(other)} {have} job(s); give the {asked} run its own --artifact-root")


def _finished(raw: dict[str, Any] | None, spec: JobSpec) -> bool:
    """A success with this run's engine settings whose recorded files are all still intact."""
    if raw is None or raw.get("status") != "success":
        return False
    options = raw.get("engine_options") or {}
    same = (raw.get("engine"), raw.get("epochs"), raw.get("batch_size"), raw.get("noise_model"),
            options.get("random_seed"), raw.get("metrics", {}).get("information") is not None,
            options.get("pinn_bundle_sha256"))
    wanted = (spec.engine.engine, spec.engine.epochs, spec.engine.batch_size, spec.engine.resolved_noise_model,
              spec.engine.seed, spec.information, None if spec.start is None else spec.start.sha256)
    if same != wanted:
        return False
    for rec in raw.get("artifacts") or ():
        path = spec.job_dir / rec["path"]
        if not path.is_file() or sha256_file(path) != (rec["sha256"], rec["size_bytes"]):
            return False
    return True


def _relative_root(root: Path, base: Path) -> str:
    import os

    return os.path.relpath(os.path.abspath(root), os.path.abspath(base))


def _write(cfg: IterativeRunConfig, path: Path, entries: dict[tuple, dict[str, Any]],
           skipped: list[SkippedView]) -> Path:
    base = path.parent
    doc = {
        "schema_version": "1.0", "kind": KIND, "created": utc_now(),
        "producer": {"package": "fly64-iterative", "version": __version__},
        "roots": {"phase_c_root": _relative_root(cfg.phase_c_root, base),
                  "phase_d_root": _relative_root(cfg.phase_d_root, base), "artifact_root": "."},
        "filters": {"dose": [float(d) for d in cfg.doses] if cfg.doses else None,
                    "view": list(cfg.views) if cfg.views else None,
                    "seeds": [int(s) for s in cfg.seeds] if cfg.seeds else None},
        "jobs": sorted(entries.values(), key=lambda raw: (float(raw["dose"]), raw["view"], raw.get("seed") or -1)),
        "skipped_views": [{"dose": s.dose, "view": s.view, "gridsize": s.gridsize, "reason": s.reason}
                          for s in skipped],
    }
    return write_json(path, doc, KIND)


def _line(spec: JobSpec, record: JobRecord) -> str:
    where = f"{spec.job.label()}"
    if record.status == "success":
        ssim = None if record.metrics is None else round(record.metrics.phase.ssim, 6)
        return (f"{where}: {spec.engine.engine} {record.wall_time_s:.2f} s on {record.device}, phase ssim "
                f"{ssim} -> {spec.job_dir / 'reconstruction.h5'}")
    return f"{where}: FAILED: {record.error} (log: {spec.job_dir / 'iterative.log'})"
