"""``fly64-train`` command line: the Phase E study runner (default) and ``train-one``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from fly64_train import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fly64-train", description="Phase E: PtychoPINN training for the fly64 study.")
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
    one.add_argument("--accelerator", default="auto")
    one.add_argument("--devices", default="auto")
    one.add_argument("--strategy", default="auto")
    one.add_argument("--deterministic", action="store_true", help="deterministic algorithms (identical losses on CPU)")
    one.add_argument("--num-workers", type=int, default=0)
    one.add_argument("--logger", default="csv", choices=("csv", "tensorboard", "none"))
    one.add_argument("--no-resume", action="store_true", help="start from scratch even if checkpoints/last.ckpt exists")
    one.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="progress bar (default: only on a terminal)")
    return parser


SUBCOMMANDS = ("train-one",)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch: ``fly64-train <subcommand> ...`` or, by default, the Phase E study runner."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("--version",)):
        from fly64_train.study_cli import main as study_main

        return study_main(argv)
    args = _parser().parse_args(argv)
    if args.command == "train-one":
        return _train_one(args)
    return 2


def _train_one(args: argparse.Namespace) -> int:
    from fly64_data.contract import ContractError

    from fly64_train.job import TrainConfig, train_job
    from fly64_train.model import ModelConfig

    cfg = TrainConfig(train_path=args.train, job_dir=args.job_dir, gridsize=args.gridsize, test_path=args.test,
                      accelerator=args.accelerator, devices=_devices(args.devices), strategy=args.strategy,
                      deterministic=args.deterministic, num_workers=args.num_workers, logger=args.logger,
                      resume=not args.no_resume, progress_bar=args.progress, max_time=args.max_time)
    if args.epochs is not None:
        cfg.max_epochs = args.epochs
    if args.batch_size is not None:
        cfg.batch_size = args.batch_size
    if args.n_groups is not None:
        cfg.n_groups = args.n_groups
    if args.base_width is not None:
        cfg.model = ModelConfig(base_width=args.base_width)
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
