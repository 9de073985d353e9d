"""``fly64-train``: one parser, four commands (``run``, ``train-one``, ``evaluate``, ``report``).

``fly64-train --phase-c-root ...`` without a command means ``run``. The training
flags of ``run`` and ``train-one`` are generated from the config dataclasses
(:mod:`fly64_train.cli_options`), so both spell every option the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from fly64_data.cli_common import (
    Accumulate,
    command_line,
    non_negative_int,
    positive_finite_float,
    positive_int,
)
from fly64_train import __version__
from fly64_train.cli_options import add_train_options, check_accelerator_here, train_config_from_args
from fly64_train.evaluation.refine import RefineConfig
from fly64_train.study_cli import add_run_command, fail, interrupted

PROG = "fly64-train"
COMMANDS = ("run", "train-one", "evaluate", "report")
#: What ``fly64-train --flag ...`` (no command) means.
DEFAULT_COMMAND = "run"

DESCRIPTION = """\
fly64 study, Phase E: PtychoPINN training, evaluation and the report.

Without a command, `fly64-train --phase-c-root ...` means `fly64-train run --phase-c-root ...`."""

EPILOG = """\
examples:
  fly64-train run --phase-c-root study/phase_c --phase-d-root study/phase_d --artifact-root study/phase_e
  fly64-train train-one --train data/patched_train.npz --job-dir jobs/one --max-epochs 5
  fly64-train evaluate --artifact-root study/phase_e --dose 1000 --view dense
  fly64-train report --artifact-root study/phase_e --output study/report
  fly64-train COMMAND --help                     the options of one command"""

EVALUATE_EPILOG = """\
Re-scores the bundle of every successful job in <artifact-root>/training_manifest.json on the job's
test split: rewrites <job dir>/reconstruction.npz and reconstruction.png and updates the job's
"metrics" in the manifest (atomically, under the runner's lock). A bundle whose sha256 differs from
the manifest is refused. Metric definitions: docs/evaluation.md.

With --refine-steps N the job's metrics also hold "refine": "PINN + refine", the scores of a copy of
the model fine-tuned for N steps, without labels, on the test split's own patterns (the training
loss), with its time; the bundle is not changed.

example:
  fly64-train evaluate --artifact-root study/phase_e --dose 1000 --view dense
  fly64-train evaluate --artifact-root study/phase_e --dose 1000 --refine-steps 300"""

REPORT_EPILOG = """\
Writes report.md (dose x view table), metrics.csv, metric_vs_dose.png, reconstructions.png and
reconstructions_amplitude.png into --output, from the manifest and each job's reconstruction.npz.

example:
  fly64-train report --artifact-root study/phase_e --output study/report"""


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser, sub = command_line(PROG, COMMANDS, __version__, description=DESCRIPTION, epilog=EPILOG,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_command(sub)
    _add_train_one(sub)
    _add_evaluate(sub)
    _add_report(sub)
    for command in sub.choices.values():
        command.add_argument("--verbose", action="store_true",
                             help="also show the training framework's own log lines (TensorFlow's C++ and "
                                  "absl logs), which are kept out of the output otherwise")
    return parser


def _add_train_one(sub: argparse._SubParsersAction) -> None:
    one = sub.add_parser("train-one", help="train one job from one DATA-001 NPZ and write its bundle",
                         description="Train one PtychoPINN model from one DATA-001 NPZ; prints its result.")
    add_train_options(one, jobs=True)
    one.set_defaults(handler=_train_one, command_parser=one)


def _device(text: str) -> str:
    from fly64_train.core.device import normal_device

    try:
        return normal_device(text)  # gpu[:K] is read as its canonical cuda[:K]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("evaluate", help="re-evaluate existing bundles and update the manifest's metrics",
                        description="Phase E+: reconstruct each job's test split from its bundle and score it "
                                    "against the ground truth.",
                        epilog=EVALUATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("--artifact-root", "--artifact_root", required=True, metavar="DIR",
                    help="Phase E folder holding training_manifest.json")
    ev.add_argument("--dose", action=Accumulate, type=positive_finite_float, metavar="D",
                    help="only these doses (default: all; repeatable)")
    ev.add_argument("--view", action=Accumulate, metavar="VIEW", help="only these views (default: all; repeatable)")
    ev.add_argument("--batch-size", "--batch_size", type=positive_int, default=32, metavar="N",
                    help="groups per forward pass (default: 32)")
    ev.add_argument("--device", default="auto", type=_device, metavar="DEV",
                    help="where the model predicts and stitches: auto (a GPU when present), cpu, cuda, cuda:1 "
                         "(default: auto)")
    ev.add_argument("--refine-steps", "--refine_steps", type=non_negative_int, default=0, metavar="N",
                    help="also score 'PINN + refine': a copy fine-tuned for N steps on the test split's own "
                         "patterns, no labels (default: 0, off)")
    ev.add_argument("--refine-lr", "--refine_lr", type=positive_finite_float, default=RefineConfig.lr, metavar="LR",
                    help=f"Adam learning rate of the refinement (default: {RefineConfig.lr:g})")
    ev.set_defaults(handler=_evaluate)


def _add_report(sub: argparse._SubParsersAction) -> None:
    rep = sub.add_parser("report", help="write the study report (table, metrics.csv, figures)",
                         description="The fly64 study report from a Phase E artifact root.",
                         epilog=REPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    rep.add_argument("--artifact-root", "--artifact_root", required=True, metavar="DIR", action=Accumulate,
                     help="Phase E folder holding training_manifest.json (repeatable: torch and tensorflow "
                          "roots side by side, the backend is a column)")
    rep.add_argument("--output", required=True, metavar="DIR", help="folder for the report files (created if needed)")
    rep.set_defaults(handler=_report)


def with_default_command(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``run`` in front when it starts with a flag that is not a top-level one."""
    argv = list(argv)
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        return [DEFAULT_COMMAND, *argv]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    """Parse and dispatch; usage errors exit 2 with one line."""
    parser = build_parser()
    argv = with_default_command(sys.argv[1:] if argv is None else argv)
    if not argv:
        parser.error("no command given")
    if not argv[0].startswith("-") and argv[0] not in COMMANDS:
        parser.error(f"unknown command {argv[0]!r}")
    args = parser.parse_args(argv)
    if getattr(args, "verbose", False):
        from fly64_train.core.seam import FRAMEWORK_LOGS_ENV

        os.environ[FRAMEWORK_LOGS_ENV] = "1"  # in the environment: Dask workers inherit it
    from fly64_train.training.stops import JobInterrupted, interruptible

    try:
        # Every command stops on TERM, INT, HUP or USR1 with one line and exit 128 + signal (run and
        # train-one also record the interrupted jobs); files are written atomically, so none is half-written.
        with interruptible():
            return args.handler(args)
    except JobInterrupted as exc:
        return interrupted(exc)


def _train_one(args: argparse.Namespace) -> int:
    """Train one job; exit 0 with its result, 1 if it failed, diverged or trained nothing, 128 + signal."""
    from fly64_data.contract import ContractError
    from fly64_train.core.seam import BackendUnavailable, get_backend
    from fly64_train.studies.divergence import divergence
    from fly64_train.studies.execute import as_train_result
    from fly64_train.training.stops import JobInterrupted, NothingTrained, interruptible

    check_accelerator_here(args.command_parser, args)
    cfg = train_config_from_args(args)
    from fly64_train.training.job_folder import ResumeMismatch

    try:
        cfg.check()
        with interruptible():
            result = as_train_result(get_backend(cfg.backend).train(cfg))
    except JobInterrupted as exc:
        return interrupted(exc)
    except NothingTrained as exc:
        return fail(f"{cfg.job_dir}: interrupted: {exc}")
    except ResumeMismatch as exc:  # the flags ask for another job than the folder holds: usage (exit 2)
        args.command_parser.error(str(exc))
    except (ContractError, BackendUnavailable, ValueError) as exc:
        return fail(str(exc))
    print(json.dumps(asdict(result), indent=2))
    reason = divergence(cfg.job_dir, result.log_path, result.monitor)
    if reason is not None:
        return fail(f"{cfg.job_dir}: diverged: {reason} (bundle kept for inspection)")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    """Re-evaluate the selected jobs (:mod:`fly64_train.studies.reevaluate`); exit 1 if any failed."""
    from fly64_manifest import ManifestError
    from fly64_train.studies.reevaluate import NothingToEvaluate, ReevaluationRequest, reevaluate

    request = ReevaluationRequest(
        Path(args.artifact_root), doses=None if args.dose is None else tuple(args.dose),
        views=None if args.view is None else tuple(args.view), batch_size=args.batch_size, device=args.device,
        refine=RefineConfig(steps=args.refine_steps, lr=args.refine_lr))
    try:
        result = reevaluate(request)
    except (ManifestError, NothingToEvaluate) as exc:
        return fail(str(exc))
    if (summary := result.summary()) is not None:
        print(summary)
    # One line on stderr, naming each job that failed and why (its recorded metrics are unchanged).
    return 0 if (failure := result.failure()) is None else fail(failure)


def _report(args: argparse.Namespace) -> int:
    from fly64_manifest import ManifestError
    from fly64_train.studies.report import write_report

    try:
        report = write_report(args.artifact_root, args.output)
    except ManifestError as exc:
        return fail(str(exc))
    except (ValueError, OSError) as exc:
        return fail(f"{args.output}: {exc}")
    for path in report.files.values():
        print(path)
    for problem in report.problems:
        print(f"fly64-train: FAILED: {problem}", file=sys.stderr)
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
