"""``fly64-train run``: the Phase E study runner's arguments and handler."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fly64_data.cli_common import Accumulate, positive_int
from fly64_data.design import get_study_design
from fly64_train.cli_options import add_train_options, check_accelerator_here, train_config_from_args
from fly64_train.studies.executor import ExecutorError
from fly64_train.studies.executor_config import DEFAULT_MAX_ATTEMPTS, KINDS, ExecutorConfig, scheduler_address
from fly64_train.studies.filters import DistinctSeeds, add_filters, check_filters
from fly64_train.studies.worker_placement import AUTO, JOBS_PER_GPU, worker_specs
from fly64_train.training.option import FlagError
from fly64_train.training.option import seed as seed_type
from fly64_train.training.stops import JobInterrupted, interruptible

RUN_EPILOG = """\
examples:
  fly64-train run --phase-c-root study/phase_c --phase-d-root study/phase_d --artifact-root study/phase_e
  fly64-train --phase-c-root ... --dose 1000 --view baseline --max-epochs 5   (no command: run)
  fly64-train run ... --dry-run                  # plan only: writes train.log files and both manifests

Every input file is checked against run_manifest.json / overlap_manifest.json (sha256, dose) first.
Outputs: <artifact-root>/dose_<int>/<view>/gs<g>/ (train.log, checkpoints/, logs/, wts.h5.zip),
<artifact-root>/training_manifest.json and skip_summary.json. Exit status 1 if any job failed.
  fly64-train run ... --executor dask --workers 3          # a local Dask cluster of 3 worker processes
  fly64-train run ... --executor dask --scheduler tcp://HOST:8786   # a running cluster (Slurm, PBS, ...)"""


def add_run_command(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``run`` subcommand: roots, job filters, run switches and the shared training flags."""
    design = get_study_design()
    run = sub.add_parser("run", help="train and evaluate every dose x view job of the study (the default)",
                         description="fly64 study, Phase E: train one PtychoPINN model per dose x view "
                                     "(baseline gs1 on Phase C data; dense and sparse gs2 on Phase D views).",
                         epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    roots = run.add_argument_group("data and outputs")
    roots.add_argument("--phase-c-root", "--phase_c_root", required=True, type=Path, help="Phase C output folder")
    roots.add_argument("--phase-d-root", "--phase_d_root", required=True, type=Path, help="Phase D output folder")
    roots.add_argument("--artifact-root", "--artifact_root", required=True, type=Path,
                       help="where job folders and training_manifest.json go")
    filters = add_filters(run, " to train")
    filters.add_argument("--gridsize", action=Accumulate, type=positive_int, metavar="G",
                         help=f"gridsizes to train, from {' '.join(map(str, design.gridsizes))}")
    switches = run.add_argument_group("run")
    switches.add_argument("--dry-run", "--dry_run", action="store_true",
                          help="enumerate jobs, write their train.log and the manifests, train nothing")
    switches.add_argument("--no-evaluate", dest="evaluate", action="store_false",
                          help="skip scoring each bundle on the test split")
    switches.add_argument("--seeds", action=DistinctSeeds, type=seed_type, metavar="S",
                          help="train every cell once per training seed, 0 to 2**32-1 (repeatable); several "
                               "seeds put jobs "
                               "in dose_<int>/<view>/gs<g>/seed_<s>/, one seed keeps the plain layout")
    add_execution_options(run)
    add_train_options(run, jobs=False)
    run.set_defaults(handler=run_command, command_parser=run)
    return run


def add_execution_options(run: argparse.ArgumentParser) -> None:
    """Where the jobs run: the ``execution`` group (ExecutorConfig's fields and defaults)."""
    default = ExecutorConfig()
    group = run.add_argument_group("execution (docs/study.md, 'Running on several workers / clusters')")
    group.add_argument("--executor", choices=KINDS, default=default.kind,
                       help=f"local: one job after another in this process; dask: one Dask task per job "
                            f"(default: {default.kind})")
    group.add_argument("--workers", type=workers_type, metavar=f"N|{AUTO}",
                       help=f"with --executor dask: start a local cluster of N worker processes; {AUTO}: "
                            f"{JOBS_PER_GPU} per GPU, 1 on a CPU-only node (the default)")
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="with --executor dask: submit to the running scheduler at ADDRESS (tcp://host:8786)")
    group.add_argument("--scheduler-file", "--scheduler_file", metavar="PATH",
                       help="with --executor dask: the scheduler named by this `dask scheduler --scheduler-file`")
    group.add_argument("--max-attempts", "--max_attempts", type=positive_int, default=default.max_attempts,
                       metavar="N", help="with --executor dask and a local cluster: starts of a job whose worker "
                                         "keeps dying before it is recorded as failed "
                                         f"(default: {DEFAULT_MAX_ATTEMPTS})")


def workers_type(text: str) -> int | str:
    """argparse type of ``--workers``: a whole number >= 1 or ``auto``."""
    return AUTO if text == AUTO else positive_int(text)


def executor_config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> ExecutorConfig:
    """The typed ExecutorConfig of the parsed flags; contradictions are usage errors (exit 2)."""
    config = ExecutorConfig(kind=args.executor, workers=args.workers, scheduler=args.scheduler,
                            scheduler_file=args.scheduler_file, max_attempts=args.max_attempts)
    try:
        config.check()
        # Before anything is read or written: the scheduler file's address, or the local workers
        # this node can run (cores, memory), so a bad value is a usage line, not a hang or an OOM.
        if config.scheduler_file is not None:
            scheduler_address(config.scheduler_file)
        elif config.kind == "dask" and config.scheduler is None:
            worker_specs(config)
    except ValueError as exc:
        parser.error(str(exc))
    return config


def run_command(args: argparse.Namespace) -> int:
    """Run the selected jobs; 1 if any failed or the inputs do not check out."""
    from fly64_data.contract import ContractError
    from fly64_train.core.seam import BackendUnavailable
    from fly64_train.studies.matrix import MissingPhaseCError
    from fly64_train.studies.runner import StudyRunConfig, run_study

    check_filters(args.command_parser, args)
    executor = executor_config_from_args(args.command_parser, args)
    if executor.scheduler is None and executor.scheduler_file is None:  # the jobs run on this node
        check_accelerator_here(args.command_parser, args)
    if not args.phase_c_root.is_dir():
        return fail(f"{args.phase_c_root}: --phase-c-root folder not found (run `make data` first)")
    cfg = StudyRunConfig(args.phase_c_root, args.phase_d_root, args.artifact_root, doses=args.dose,
                         views=args.view, gridsizes=args.gridsize, dry_run=args.dry_run,
                         train=train_config_from_args(args, train_path="", job_dir=""), evaluate=args.evaluate,
                         executor=executor, seeds=args.seeds)
    from fly64_train.studies.runner import RunConflict
    from fly64_train.training.job_folder import ResumeMismatch

    try:
        with interruptible():  # TERM, INT, HUP, USR1: record the running jobs as interrupted, exit 128 + signal
            outcome = run_study(cfg)
    except JobInterrupted as exc:
        return interrupted(exc)
    except (FlagError, RunConflict, ResumeMismatch) as exc:
        args.command_parser.error(str(exc))
    except (MissingPhaseCError, ContractError, BackendUnavailable, ExecutorError, ValueError, OSError) as exc:
        return fail(str(exc))
    return 1 if outcome.failed else 0


def interrupted(exc: JobInterrupted) -> int:
    """One line for a handled signal; the exit status is ``128 + signal`` (130 for Ctrl-C)."""
    print(f"fly64-train: {exc}: stopped; rerun the same command to continue (training jobs resume from "
          "their checkpoints)", file=sys.stderr)
    return exc.exit_status


def fail(message: str) -> int:
    """Print a one-line error; exit status 1 (bad input or failed work, not bad usage)."""
    print(f"fly64-train: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 1
