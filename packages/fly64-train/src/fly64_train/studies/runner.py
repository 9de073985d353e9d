"""Phase E study runner, in named steps with one direction of data flow.

``plan`` (the filtered matrix -> :class:`JobSpec` per runnable job, skipped views)
-> ``verify_inputs`` (every input file against its producer's manifest, before
anything is written) -> ``open_executor`` (in process, or a Dask cluster: a bad
scheduler address fails here, still before anything is written) -> ``run_job``
per spec on the executor (train through the backend, then evaluate) ->
``manifest_writer.record`` by this process as each job finishes, so a crash
loses at most the jobs in progress and workers never write the root manifests.

Outputs at the artifact root: ``training_manifest.json`` (one entry per (dose,
view, gridsize); runs into one root upsert their own entries) and
``skip_summary.json`` (the manifest's ``skipped_views``, identical object).
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from tqdm import tqdm

from fly64_data.design import StudyDesign, get_study_design
from fly64_manifest import (
    SkippedView,
    inside_root,
    load_training_manifest,
    refuse_foreign_root,
    refuse_output_in_input,
)
from fly64_train.core.seam import get_backend
from fly64_train.evaluation.evaluate import EvaluationConfig
from fly64_train.studies.execute import JOB_LOCK_NAME, run_job, started_attempts
from fly64_train.studies.executor import JobLost, open_executor
from fly64_train.studies.executor_config import ExecutorConfig
from fly64_train.studies.inputs import RecordedInputs, read_phase_c, read_phase_d, verify_inputs
from fly64_train.studies.job_context import JobContext, job_context
from fly64_train.studies.job_record import UNSUCCESSFUL, JobRecord, JobResult
from fly64_train.studies.job_spec import LOG_NAME, JobSpec
from fly64_train.studies.manifest_writer import (
    LOCK_NAME,
    MANIFEST_NAME,
    RunHeader,
    record,
    update_job_metrics,
)
from fly64_train.studies.matrix import BASELINE, Located, build_matrix, filter_jobs, locate
from fly64_train.studies.model_fit import check_model_fits
from fly64_train.training.config import TrainConfig
from fly64_train.training.job_folder import CHECKPOINTS, LOGS, check_resume
from fly64_train.training.stops import JobInterrupted

__all__ = ["RunConflict", "RunOutcome", "StudyRunConfig", "check_outputs", "plan", "run_study", "update_job_metrics"]


class RunConflict(ValueError):
    """The command line asks for something the artifact root cannot hold (a usage error, exit 2)."""


def _settings_only() -> TrainConfig:
    return TrainConfig(train_path="", job_dir="")


@dataclass
class StudyRunConfig:
    """What one ``fly64-train run`` asks for."""

    phase_c_root: Path
    """Phase C output folder (``run_manifest.json`` and ``dose_<d>/patched_*.npz``)."""
    phase_d_root: Path
    """Phase D output folder (``overlap_manifest.json`` and the views)."""
    artifact_root: Path
    """Where job folders and the manifests go."""
    doses: list[float] | None = None
    """Only these doses (``None``: every dose of the design)."""
    views: list[str] | None = None
    """Only these views."""
    gridsizes: list[int] | None = None
    """Only these gridsizes."""
    dry_run: bool = False
    """Plan and log every job, train nothing."""
    train: TrainConfig = field(default_factory=_settings_only)
    """The user's training settings, the same for every job; the plan fills in each job's
    ``train_path``, ``test_path``, ``job_dir`` and ``gridsize`` (whatever this one holds there)."""
    evaluate: bool = True
    """Score each bundle on its test split."""
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    """Where the jobs run: in this process (the default) or on Dask workers."""
    seeds: list[int] | None = None
    """Training seeds: every cell once per seed (``None`` or one seed: one job per cell, plain layout;
    one seed replaces ``train.seed``)."""

    def check(self) -> None:
        if self.doses is not None and not self.doses or self.views is not None and not self.views:
            raise ValueError("a filter, when given, names at least one value")
        self.executor.check()
        if self.seeds is not None:
            if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
                raise ValueError(f"seeds must be distinct non-negative integers, got {self.seeds}")

    def header(self) -> RunHeader:
        return RunHeader(self.phase_c_root, self.phase_d_root, self.artifact_root, self.doses, self.views,
                         self.gridsizes, self.train.backend, self.dry_run)


@dataclass
class RunOutcome:
    """What a run did."""

    manifest_path: Path
    """The training manifest written."""
    jobs: list[JobRecord]
    """This run's jobs, in matrix order."""
    skipped: list[SkippedView]
    """Views with no data."""

    @property
    def failed(self) -> int:
        return sum(1 for job in self.jobs if job.failed)


def plan(cfg: StudyRunConfig, design: StudyDesign | None = None,
         recorded: RecordedInputs | None = None) -> tuple[list[JobSpec], list[SkippedView]]:
    """The runnable jobs as specs, and the skipped views (reads manifests, writes nothing).

    ``recorded`` keeps the producer manifests the plan read, so that checking the input files against
    them (:func:`~fly64_train.studies.inputs.verify_inputs`) does not read them again.

    Raises
    ------
    MissingPhaseCError, fly64_manifest.ManifestError
        A baseline file is missing, or Phase D's manifest is unreadable.
    """
    design = design or get_study_design()
    phase_c, phase_d = Path(cfg.phase_c_root), Path(cfg.phase_d_root)
    # Phase D's manifest names the equal-positions controls, so it is read before the matrix is built.
    overlap = read_phase_d(phase_d, filter_jobs(build_matrix(design), cfg.doses, cfg.views, cfg.gridsizes),
                           cfg.views)
    jobs = filter_jobs(build_matrix(design, overlap, cfg.seeds), cfg.doses, cfg.views, cfg.gridsizes)
    found = [locate(job, phase_c, phase_d, overlap) for job in jobs]
    # Evaluation runs where training does: a study forced onto the CPU stays there on a GPU host.
    evaluation = EvaluationConfig(ms_ssim_sigma=float(design.metrics_config["ms_ssim_sigma"]),
                                  neighbor_count=cfg.train.neighbor_count, grouping_seed=cfg.train.grouping_seed,
                                  device="cpu" if cfg.train.torch.device_kind == "cpu" else "auto")
    located = [item for item in found if isinstance(item, Located)]
    run = read_phase_c(phase_c) if any(item.job.view == BASELINE for item in located) else None
    if recorded is not None:
        recorded.keep(run, overlap)
    run_id = uuid.uuid4().hex
    specs = [_spec(item, cfg, evaluation, job_context(item.job, run, overlap), run_id) for item in located]
    # A skip is one per cell, whatever the number of seeds.
    skips = {(s.dose, s.view, s.gridsize): s for s in found if isinstance(s, SkippedView)}
    return specs, list(skips.values())


def _spec(item: Located, cfg: StudyRunConfig, evaluation: EvaluationConfig, context: JobContext,
          run_id: str) -> JobSpec:
    seed = item.job.seed if item.job.seed is not None else (cfg.seeds[0] if cfg.seeds else cfg.train.seed)
    train = replace(cfg.train, train_path=str(item.train_path), test_path=str(item.test_path),
                    job_dir=str(Path(cfg.artifact_root) / item.job.job_dir), gridsize=item.job.gridsize, seed=seed)
    return JobSpec(job=item.job, train=train, evaluation=evaluation, evaluate=cfg.evaluate, dry_run=cfg.dry_run,
                   context=context, run_id=run_id, artifact_root=str(cfg.artifact_root))


def run_study(cfg: StudyRunConfig, out: IO[str] | None = None, design: StudyDesign | None = None) -> RunOutcome:
    """Train (or, with ``dry_run``, plan) every selected job and record the results.

    A failing job is recorded as failed and the others still run. Errors that
    make the whole run meaningless (a missing Phase C file, an input file that
    is not the one its manifest records) raise before anything is written.
    """
    out = out or sys.stdout
    cfg.check()
    get_backend(cfg.train.backend)  # an uninstalled backend fails the run here, not each job
    recorded = RecordedInputs(Path(cfg.phase_c_root), Path(cfg.phase_d_root))
    specs, skipped = plan(cfg, design, recorded)
    for spec in specs:
        spec.check()
    verify_inputs(specs, Path(cfg.phase_c_root), Path(cfg.phase_d_root), recorded)
    check_model_fits(specs)  # --input-fraction/--depth against each job's N, dry run included
    check_outputs(cfg, specs)
    header = cfg.header()
    records: dict = {}
    with open_executor(cfg.executor, out) as executor:
        manifest_path = record(header, [], skipped)
        try:
            with tqdm(total=len(specs), desc="jobs", unit="job", file=out,
                      disable=not _is_terminal(out)) as bar:
                for spec, outcome in executor.run(run_job, specs, _task_label):
                    rec = outcome if isinstance(outcome, JobRecord) else _lost(spec, outcome)
                    records[spec.job.key] = rec
                    manifest_path = record(header, [rec], skipped)
                    bar.write(_job_line(spec, rec), file=out)
                    bar.update()
        except JobInterrupted as exc:
            stopped = _interrupted(specs, records, exc)
            if stopped:
                record(header, stopped, skipped)
            print(f"{exc}: {len(records)} job(s) finished, {len(stopped)} recorded as interrupted "
                  f"(their last checkpoints are kept; rerun the same command to resume)", file=out)
            raise
    for skip in skipped:
        print(f"skipped: dose {skip.dose:g} {skip.view} gs{skip.gridsize}: {skip.reason}", file=out)
    outcome = RunOutcome(manifest_path, [records[spec.job.key] for spec in specs], skipped)
    print(f"manifest: {manifest_path} ({len(records)} jobs, {len(skipped)} skipped{_unsuccessful(outcome.jobs)})",
          file=out)
    return outcome


def check_outputs(cfg: StudyRunConfig, specs: list[JobSpec]) -> None:
    """Refuse, before anything is written, a run whose outputs would land outside or on top of others.

    Raises
    ------
    fly64_manifest.UnsafePathError
        The artifact root is (inside) an input root or another phase's root, or a job folder,
        its ``checkpoints/``, ``logs/``, ``train.log`` or lock file is a link or lies outside the root.
    RunConflict
        The root holds a study of another backend.
    fly64_train.training.job_folder.ResumeMismatch
        A job folder holds a checkpoint of other data or settings (and the run would resume it).
    """
    root = Path(cfg.artifact_root)
    refuse_output_in_input(root, {"--phase-c-root": cfg.phase_c_root, "--phase-d-root": cfg.phase_d_root},
                           output_flag="--artifact-root")
    refuse_foreign_root(root, MANIFEST_NAME, output_flag="--artifact-root")
    inside_root(root / LOCK_NAME, root, what="artifact root lock file")
    manifest = root / MANIFEST_NAME
    if manifest.is_file():
        recorded = load_training_manifest(manifest).backend
        if recorded != cfg.train.backend:
            raise RunConflict(f"--artifact-root {root} holds a {recorded} study; one artifact root holds one "
                              f"backend: train --backend {cfg.train.backend} into another --artifact-root")
    for spec in specs:
        for name in (CHECKPOINTS, LOGS, LOG_NAME, JOB_LOCK_NAME):
            inside_root(spec.job_dir / name, root, what="job output")
        if not cfg.dry_run:
            check_resume(spec.train)


def _interrupted(specs: list[JobSpec], records: dict, exc: JobInterrupted) -> list[JobRecord]:
    """The jobs this run started but did not finish, as ``interrupted`` records.

    A job started in this run iff its ``attempts.json`` carries this run's id (written as it
    starts, on whichever worker): jobs never started keep whatever an earlier run recorded.
    """
    stopped = []
    for spec in specs:
        if spec.job.key in records:
            continue
        attempts = started_attempts(spec.job_dir, spec.run_id)
        if attempts:
            reason = f"{exc} during attempt {attempts}; its last checkpoint is kept, a rerun resumes it"
            stopped.append(JobRecord(job=spec.job, backend=spec.train.backend, context=spec.context,
                                     result=JobResult.interrupted(reason, 0.0, attempts)))
    return stopped


def _task_label(spec: JobSpec) -> str:
    return spec.job.label()


def _lost(spec: JobSpec, lost: JobLost) -> JobRecord:
    """A job whose workers died on every allowed attempt, recorded as failed with its attempts."""
    error = f"lost: its worker died on each of {lost.attempts} attempt(s) ({lost.reason})"
    return JobRecord(job=spec.job, backend=spec.train.backend,
                     result=JobResult.failed(error, 0.0, attempts=max(1, lost.attempts)))


def _unsuccessful(jobs: list[JobRecord]) -> str:
    """``, 1 failed, 1 diverged`` for the summary line (empty when every job succeeded)."""
    counts = {status: sum(1 for j in jobs if j.result.status == status) for status in UNSUCCESSFUL}
    return "".join(f", {n} {status}" for status, n in counts.items() if n)


def _is_terminal(out: IO[str]) -> bool:
    return bool(getattr(out, "isatty", None) and out.isatty())


def _job_line(spec: JobSpec, rec: JobRecord) -> str:
    """One progress line: dose, view, status, then the bundle or the error, minutes and where it ran."""
    result, job = rec.result, spec.job
    where = f"dose {job.dose:g} view {job.view} gs{job.gridsize}"
    ran = f"{result.duration_s / 60:.2f} min, attempt {result.attempts}, on {result.ran_on or 'a lost worker'}"
    if result.status == "success":
        return (f"{where}: bundle {spec.job_dir / result.bundle_path} sha256 {result.bundle_sha256} "
                f"size {result.bundle_size_bytes} bytes (success, {ran})")
    if result.status in UNSUCCESSFUL:
        return f"{where}: {result.status.upper()}: {result.error} (log: {spec.log_path}; {ran})"
    if result.stop_reason == "max_time":
        return (f"{where}: bundle {spec.job_dir / result.bundle_path} sha256 {result.bundle_sha256} (success, "
                f"stopped by --max-time after {result.epochs_completed} epoch(s); {ran})")
    return f"{where}: dry run, would train {job.data_paths()[0]} (log: {spec.log_path})"
