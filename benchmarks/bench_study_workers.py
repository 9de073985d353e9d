"""Wall time of a whole study's job matrix in process and on 1, 2 and 3 local Dask workers.

Builds the tiny study (N = 32) with the real ``fly64-data`` and ``fly64-overlap``
CLIs, then trains and evaluates every job of its matrix through each executor
into a fresh artifact root, and prints one line per executor: wall time
(cluster start included), jobs succeeded and the speed-up over one worker.

    .venv/bin/python benchmarks/bench_study_workers.py [--workers 1 2 3] [--epochs 2] [--dose D ...] [--no-local]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from fly64_data.cli import main as data_main
from fly64_data.design import get_study_design
from fly64_overlap.cli import main as overlap_main
from fly64_train.evaluate import EvaluationConfig
from fly64_train.job import TrainConfig
from fly64_train.runner import StudyRunConfig, plan, train_config_for
from fly64_train.study.executor import ExecutorConfig, open_executor
from fly64_train.study.run_job import JobResult, JobSpec, run_job

TINY_STUDY_DATA = ["--patch-size", "32", "--object-size", "192", "--scan-step", "8"]
TINY_MODEL = {"base_width": 4, "depth": 3, "convs_per_level": 1}


def build_study(root: Path) -> StudyRunConfig:
    assert data_main(["generate", "--output-root", str(root / "phase_c"), *TINY_STUDY_DATA]) == 0
    assert overlap_main(["--phase-c-root", str(root / "phase_c"), "--output-root", str(root / "phase_d")]) == 0
    return StudyRunConfig(root / "phase_c", root / "phase_d", root / "phase_e")


def job_specs(study: StudyRunConfig, artifact_root: Path, epochs: int) -> list[JobSpec]:
    design = get_study_design()
    study = StudyRunConfig(study.phase_c_root, study.phase_d_root, artifact_root, doses=study.doses,
                           train_overrides={"max_epochs": epochs, "model": TINY_MODEL, "progress_bar": False})
    runnable, _ = plan(study, design)
    evaluation = EvaluationConfig(ms_ssim_sigma=float(design.metrics_config.get("ms_ssim_sigma", 1.0)))
    run_id = uuid.uuid4().hex
    return [JobSpec(item.job.label(), TrainConfig.from_dict(train_config_for(item, study, design)), run_id,
                    evaluation) for item in runnable]


def timed_run(config: ExecutorConfig, specs: list[JobSpec]) -> tuple[float, int]:
    started = time.perf_counter()
    with open_executor(config) as executor:
        outcomes = [out for _, out in executor.run(run_job, specs, lambda s: s.label)]
    ok = sum(isinstance(out, JobResult) and out.status == "success" for out in outcomes)
    return time.perf_counter() - started, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dose", type=float, action="extend", nargs="+", help="only these doses' jobs")
    parser.add_argument("--no-local", action="store_true", help="skip the in-process reference run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        study = build_study(root)
        study.doses = args.dose
        n_jobs = len(job_specs(study, root / "count", args.epochs))
        print(f"tiny study: {n_jobs} jobs, {args.epochs} epochs each, training + evaluation")
        if not args.no_local:
            seconds, ok = timed_run(ExecutorConfig(), job_specs(study, root / "local", args.epochs))
            print(f"local (in process): {seconds:6.1f} s, {ok}/{n_jobs} succeeded", flush=True)
        one = None
        for n in args.workers:
            specs = job_specs(study, root / f"dask{n}", args.epochs)
            seconds, ok = timed_run(ExecutorConfig(kind="dask", workers=n, gpus=()), specs)
            one = one or seconds
            print(f"dask, {n} worker(s): {seconds:6.1f} s, {ok}/{n_jobs} succeeded, "
                  f"speed-up x{one / seconds:.2f}", flush=True)


if __name__ == "__main__":
    main()
