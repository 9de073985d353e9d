"""``fly64-train`` command line: the Phase E study runner (default) and ``train-one``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from fly64_data.cli_common import UNSET
from fly64_train import __version__
from fly64_train.study_cli import add_count_split_option


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fly64-train",
                                     description="Phase E: PtychoPINN training for the fly64 study.")
    parser.add_argument("--version", action="version", version=f"fly64-train {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("train-one", help="train one job from one DATA-001 NPZ and write its bundle")
    one.add_argument("--train", required=True, help="training NPZ (patched_train.npz or <view>_train.npz)")
    one.add_argument("--test", default=None, help="test NPZ, recorded in the bundle provenance")
    one.add_argument("--job-dir", required=True, help="output folder for checkpoints, logs and wts.h5.zip")
    one.add_argument("--gridsize", type=int, default=1, choices=(1, 2))
    one.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: TrainConfig.max_epochs)")
    one.add_argument("--max-time", default=None, help="wall-clock cap DD:HH:MM:SS")
    one.add_argument("--batch-size", type=int, default=None)
    one.add_argument("--n-groups", type=int, default=None, help="groups to train on (default: one per position)")
    one.add_argument("--base-width", type=int, default=None, help="CNN width of the first level")
    add_count_split_option(one)
    one.add_argument("--accelerator", default="auto")
    one.add_argument("--devices", default="auto")
    one.add_argument("--strategy", default="auto")
    one.add_argument("--deterministic", action="store_true", help="deterministic algorithms (identical losses on CPU)")
    one.add_argument("--num-workers", type=int, default=0)
    one.add_argument("--logger", default="csv", choices=("csv", "tensorboard", "none"))
    one.add_argument("--no-resume", action="store_true", help="start from scratch even if checkpoints/last.ckpt exists")
    one.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="progress bar (default: only on a terminal)")
    _add_evaluate(sub)
    _add_report(sub)
    return parser


EVALUATE_EPILOG = """\
Re-scores the bundle of every successful job in <artifact-root>/training_manifest.json on the job's
test split: rewrites <job dir>/reconstruction.npz and reconstruction.png and updates the job's
"metrics" in the manifest (atomically, under the runner's lock). A bundle whose sha256 differs from
the manifest is refused. Metric definitions: docs/evaluation.md.

example:
  fly64-train evaluate --artifact-root study/phase_e --dose 1000 --view dense"""

REPORT_EPILOG = """\
Writes report.md (dose x view table), metrics.csv, metric_vs_dose.png, reconstructions.png and
reconstructions_amplitude.png into --output, from the manifest and each job's reconstruction.npz.

example:
  fly64-train report --artifact-root study/phase_e --output study/report"""


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("evaluate", help="re-evaluate existing bundles and update the manifest's metrics",
                        description="Phase E+: reconstruct each job's test split from its bundle and score it "
                                    "against the ground truth.",
                        epilog=EVALUATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("--artifact-root", "--artifact_root", required=True, metavar="DIR",
                    help="Phase E folder holding training_manifest.json")
    ev.add_argument("--dose", nargs="+", type=float, metavar="D", help="only these doses (default: all)")
    ev.add_argument("--view", nargs="+", metavar="VIEW", help="only these views: baseline dense sparse")
    ev.add_argument("--batch-size", "--batch_size", type=int, default=32, metavar="N",
                    help="groups per forward pass (default: 32)")


def _add_report(sub: argparse._SubParsersAction) -> None:
    rep = sub.add_parser("report", help="write the study report (table, metrics.csv, figures)",
                         description="The fly64 study report from a Phase E artifact root.",
                         epilog=REPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    rep.add_argument("--artifact-root", "--artifact_root", required=True, metavar="DIR",
                     help="Phase E folder holding training_manifest.json")
    rep.add_argument("--output", required=True, metavar="DIR", help="folder for the report files (created if needed)")


SUBCOMMANDS = ("train-one", "evaluate", "report")


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch: ``fly64-train <subcommand> ...`` or, by default, the Phase E study runner."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("--version",)):
        from fly64_train.study_cli import main as study_main

        return study_main(argv)
    args = _parser().parse_args(argv)
    if args.command == "train-one":
        return _train_one(args)
    if args.command == "evaluate":
        return _evaluate(args)
    if args.command == "report":
        return _report(args)
    return 2


def _error(message: str) -> int:
    print(f"fly64-train: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 1


def _evaluate(args: argparse.Namespace) -> int:
    from fly64_data.contract import ContractError
    from fly64_data.design import get_study_design
    from fly64_manifest import ManifestError, load_training_manifest, sha256_file
    from fly64_train.backends.torch.bundle import BundleError
    from fly64_train.evaluation.evaluate import EvaluationConfig, evaluate_job
    from fly64_train.study.runner import update_job_metrics

    try:
        manifest = load_training_manifest(args.artifact_root)
    except ManifestError as exc:
        return _error(str(exc))
    design = get_study_design()
    doses = None if args.dose is None else {float(d) for d in args.dose}
    jobs = [j for j in manifest.jobs_with_status("success")
            if (doses is None or float(j.dose) in doses) and (args.view is None or j.view in args.view)]
    if not jobs:
        return _error(f"{manifest.path}: no successful job matches the filters")
    sigma = float(design.metrics_config.get("ms_ssim_sigma", 1.0))
    updates = {}
    for job in jobs:
        where = f"dose {job.dose:g} {job.view} gs{job.gridsize}"
        try:
            digest, _ = sha256_file(job.bundle_path)
            if digest != job.bundle_sha256:
                return _error(f"{job.bundle_path}: sha256 {digest} does not match the manifest's "
                              f"{job.bundle_sha256}")
            metrics = evaluate_job(job.bundle_path, job.test_data_path, job.job_dir,
                                   EvaluationConfig(ms_ssim_sigma=sigma, batch_size=args.batch_size),
                                   title=f"{where} (test split)")
        except FileNotFoundError as exc:
            return _error(f"{exc.filename}: file not found")
        except (BundleError, ContractError, ValueError, OSError) as exc:
            return _error(str(exc))
        updates[job.key] = metrics
        amp, ph = metrics["amplitude"], metrics["phase"]
        print(f"{where}: amplitude SSIM {amp['ssim']:.3f} MS-SSIM {amp['ms_ssim']:.3f}; "
              f"phase SSIM {ph['ssim']:.3f} MS-SSIM {ph['ms_ssim']:.3f} -> {job.job_dir}")
    path = update_job_metrics(manifest.root, updates)
    print(f"manifest: {path} ({len(updates)} job(s) evaluated)")
    return 0


def _report(args: argparse.Namespace) -> int:
    from fly64_manifest import ManifestError
    from fly64_train.study.report import write_report

    try:
        report = write_report(args.artifact_root, args.output)
    except ManifestError as exc:
        return _error(str(exc))
    except (ValueError, OSError) as exc:
        return _error(f"{args.output}: {exc}")
    for path in report.files.values():
        print(path)
    return 0


def _train_one(args: argparse.Namespace) -> int:
    from fly64_data.contract import ContractError
    from fly64_train.backends.torch.train import train_job
    from fly64_train.training.config import TrainConfig
    from fly64_train.training.model_config import ModelConfig

    cfg = TrainConfig(train_path=args.train, job_dir=args.job_dir, gridsize=args.gridsize, test_path=args.test,
                      accelerator=args.accelerator, devices=_devices(args.devices), strategy=args.strategy,
                      deterministic=args.deterministic, num_workers=args.num_workers, logger=args.logger,
                      resume=not args.no_resume, progress_bar=args.progress)
    if args.max_time is not None:
        cfg.max_time = args.max_time
    if args.epochs is not None:
        cfg.max_epochs = args.epochs
    if args.batch_size is not None:
        cfg.batch_size = args.batch_size
    if args.n_groups is not None:
        cfg.n_groups = args.n_groups
    if args.base_width is not None:
        cfg.model = ModelConfig(base_width=args.base_width)
    if args.count_split is not UNSET:
        cfg.count_split = args.count_split
    try:
        result = train_job(cfg)
    except (ContractError, ValueError) as exc:
        print(f"fly64-train: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


def _devices(value: str) -> int | str:
    return int(value) if value.isdigit() else value


if __name__ == "__main__":
    raise SystemExit(main())
