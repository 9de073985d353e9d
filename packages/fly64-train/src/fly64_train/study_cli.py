"""``fly64-train --phase-c-root C --phase-d-root D --artifact-root E [filters] [options]``: the Phase E runner."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from fly64_data.cli_common import UNSET, OneLineParser, fraction_or_off, positive_int
from fly64_data.contract import ContractError
from fly64_data.design import get_study_design
from fly64_train import __version__
from fly64_train.study.matrix import VIEW_GRIDSIZE, MissingPhaseCError

PROG = "fly64-train"

EPILOG = """\
examples:
  fly64-train --phase-c-root study/phase_c --phase-d-root study/phase_d --artifact-root study/phase_e
  fly64-train ... --dose 1000 --view baseline --max-epochs 5
  fly64-train ... --dry-run                      # plan only: writes train.log files and both manifests

Outputs: <artifact-root>/dose_<int>/<view>/gs<g>/ (train.log, checkpoints/, logs/, wts.h5.zip),
<artifact-root>/training_manifest.json and skip_summary.json. Exit status 1 if any job failed.
other commands:
  fly64-train evaluate --artifact-root DIR        re-score existing bundles on their test splits
  fly64-train report --artifact-root DIR --output DIR   table, metrics.csv and figures
  fly64-train train-one --help                    one job from one NPZ"""


def add_count_split_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--count-split F|off``; left at :data:`UNSET` when not given, so TrainConfig's default applies."""
    parser.add_argument("--count-split", "--count_split", type=fraction_or_off, default=UNSET, metavar="F",
                        help="photon-split training: the CNN sees fraction F of each pattern's counts and is "
                             "scored on the rest (0 or off: no split; default: TrainConfig's)")


def build_parser() -> argparse.ArgumentParser:
    design = get_study_design()
    views = ["baseline", *design.overlap_views]
    parser = OneLineParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="fly64 study, Phase E: train one PtychoPINN model per dose x view "
                    "(baseline gs1 on Phase C data; dense and sparse gs2 on Phase D views).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    roots = parser.add_argument_group("data and outputs")
    roots.add_argument("--phase-c-root", "--phase_c_root", required=True, type=Path, help="Phase C output folder")
    roots.add_argument("--phase-d-root", "--phase_d_root", required=True, type=Path, help="Phase D output folder")
    roots.add_argument("--artifact-root", "--artifact_root", required=True, type=Path,
                       help="where job folders and training_manifest.json go")
    filters = parser.add_argument_group("filters (AND-combined; default: every job)")
    filters.add_argument("--dose", nargs="+", type=float, metavar="D",
                         help=f"doses to train, from {' '.join(f'{d:g}' for d in design.dose_list)}")
    filters.add_argument("--view", nargs="+", metavar="VIEW", help=f"views to train, from {' '.join(views)}")
    filters.add_argument("--gridsize", nargs="+", type=int, metavar="G", help="gridsizes to train (1 or 2)")
    train = parser.add_argument_group("training")
    train.add_argument("--dry-run", "--dry_run", action="store_true",
                       help="enumerate jobs, write their train.log and the manifests, train nothing")
    train.add_argument("--max-epochs", "--max_epochs", type=positive_int, metavar="N", help="maximum epochs per job")
    train.add_argument("--max-time", "--max_time", metavar="DD:HH:MM:SS", help="wall-clock cap per job")
    train.add_argument("--n-groups", "--n_groups", "--n-images", "--n_images", dest="n_groups", type=positive_int,
                       metavar="N", help="training groups per job (default: one per position)")
    train.add_argument("--batch-size", "--batch_size", type=positive_int, metavar="N")
    train.add_argument("--seed", type=int, help="training seed (weights init, shuffling)")
    add_count_split_option(train)
    train.add_argument("--base-width", "--base_width", type=positive_int, metavar="C",
                       help="CNN width of the first level")
    train.add_argument("--no-evaluate", dest="evaluate", action="store_false",
                       help="skip scoring each bundle on the test split")
    hw = parser.add_argument_group("hardware and logging")
    hw.add_argument("--accelerator", default="auto", help="auto (a GPU when present), cpu, gpu, ... (default: auto)")
    hw.add_argument("--devices", default="auto", help="number of devices or 'auto'")
    hw.add_argument("--strategy", default="auto", help="Lightning strategy, e.g. ddp (default: auto)")
    hw.add_argument("--deterministic", action="store_true", help="deterministic algorithms: identical losses on CPU")
    hw.add_argument("--num-workers", "--num_workers", type=int, default=0, help="data-loader worker processes")
    hw.add_argument("--logger", default="csv", choices=("csv", "tensorboard", "none"))
    return parser


def _check_filters(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    design = get_study_design()
    if args.dose:
        unknown = [d for d in args.dose if float(d) not in {float(x) for x in design.dose_list}]
        if unknown:
            parser.error(f"--dose {unknown[0]:g} is not in the study design "
                         f"({', '.join(f'{d:g}' for d in design.dose_list)})")
    if args.view:
        known = ["baseline", *design.overlap_views]
        unknown = [v for v in args.view if v not in known]
        if unknown:
            parser.error(f"--view {unknown[0]} is not in the study design ({', '.join(known)})")
    if args.gridsize:
        unknown = [g for g in args.gridsize if g not in set(VIEW_GRIDSIZE.values())]
        if unknown:
            parser.error(f"--gridsize {unknown[0]} is not in the study design (1, 2)")


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    out: dict[str, object] = {
        "accelerator": args.accelerator, "devices": int(args.devices) if args.devices.isdigit() else args.devices,
        "strategy": args.strategy, "deterministic": args.deterministic, "num_workers": args.num_workers,
        "logger": args.logger,
    }
    for name in ("max_epochs", "max_time", "n_groups", "batch_size", "seed"):
        if getattr(args, name) is not None:
            out[name] = getattr(args, name)
    if args.count_split is not UNSET:
        out["count_split"] = args.count_split
    if args.base_width is not None:
        out["model"] = {"base_width": args.base_width}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from fly64_train.study.runner import StudyRunConfig, run_study

    parser = build_parser()
    args = parser.parse_args(argv)
    _check_filters(parser, args)
    for flag, root in (("--phase-c-root", args.phase_c_root),):
        if not root.is_dir():
            print(f"{PROG}: error: {root}: {flag} folder not found (run `make data` first)", file=sys.stderr)
            return 1
    cfg = StudyRunConfig(args.phase_c_root, args.phase_d_root, args.artifact_root, doses=args.dose,
                         views=args.view, gridsizes=args.gridsize, dry_run=args.dry_run,
                         train_overrides=_overrides(args), evaluate=args.evaluate)
    try:
        outcome = run_study(cfg)
    except (MissingPhaseCError, ContractError, ValueError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    return 1 if outcome.failed else 0
