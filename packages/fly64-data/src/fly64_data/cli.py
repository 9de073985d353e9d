"""``fly64-data``: generate the Phase C dose sweep, write the base sample, validate files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fly64_data import __version__
from fly64_data.cli_common import Accumulate, OneLineParser, error_line, positive_finite_float, positive_int
from fly64_data.contract import ContractError, validate_dataset
from fly64_data.design import get_study_design
from fly64_data.sample import (
    DEFAULT_OBJECT_SIZE,
    DEFAULT_SCAN_STEP,
    default_sample,
    load_base_npz,
    save_base_npz,
)

PROG = "fly64-data"


class UsageError(Exception):
    """Bad command-line values (exit 2)."""


def build_parser() -> argparse.ArgumentParser:
    design = get_study_design()
    parser = OneLineParser(
        prog=PROG,
        description="fly64 study, Phase C: simulate diffraction of the fly-like sample at each photon dose.",
        epilog="Example: fly64-data generate --output-root study/phase_c",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser(
        "generate", help="simulate the dose sweep into OUTPUT_ROOT/dose_<int>/patched_{train,test}.npz",
        description="Simulate Poisson-noisy diffraction at each dose and split it train/test along y.",
    )
    gen.add_argument("--output-root", "--output_root", required=True, type=Path,
                     help="folder for dose_<int>/ subfolders and run_manifest.json")
    gen.add_argument("--base-npz", "--base_npz", type=Path,
                     help="NPZ with objectGuess, probeGuess (N x N) and optionally xcoords/ycoords "
                          "(default: the embedded synthetic fly sample)")
    gen.add_argument("--dose", action=Accumulate, type=positive_finite_float, metavar="D",
                     help=f"photons per pattern; repeatable (default: {' '.join(f'{d:g}' for d in design.dose_list)})")
    gen.add_argument("--patch-size", "--patch_size", "-N", type=positive_int, default=design.patch_size_pixels,
                     help="patch/detector size N in pixels (default: %(default)s)")
    gen.add_argument("--object-size", "--object_size", type=positive_int, default=DEFAULT_OBJECT_SIZE,
                     help="side of the embedded synthetic object in pixels (default: %(default)s)")
    gen.add_argument("--scan-step", "--scan_step", type=positive_finite_float, default=DEFAULT_SCAN_STEP,
                     help="raster step in pixels when the base has no positions (default: %(default)s)")

    base = sub.add_parser("base", help="write the embedded base sample to an NPZ (for inspection or editing)")
    base.add_argument("--output", required=True, type=Path, help="NPZ file to write")
    base.add_argument("--patch-size", "--patch_size", "-N", type=positive_int, default=design.patch_size_pixels)
    base.add_argument("--object-size", "--object_size", type=positive_int, default=DEFAULT_OBJECT_SIZE)
    base.add_argument("--scan-step", "--scan_step", type=positive_finite_float, default=DEFAULT_SCAN_STEP)

    val = sub.add_parser("validate", help="check NPZ files against the data contract (DATA-001)")
    val.add_argument("files", nargs="+", type=Path, metavar="FILE")
    val.add_argument("--gridsize", type=positive_int, default=1)
    val.add_argument("--neighbor-count", "--neighbor_count", type=positive_int, default=None)
    return parser


def _generate(args: argparse.Namespace) -> None:
    from fly64_data.simulate import SweepConfig, run_sweep

    design = get_study_design(**({"dose_list": args.dose} if args.dose else {}))
    seed = int(design.rng_seeds["simulation"])
    for dose in design.dose_list:
        if float(dose) != int(dose):
            raise UsageError(f"--dose {dose}: doses must be whole numbers of photons (folders are dose_<int>)")
    if args.base_npz is not None:
        sample = load_base_npz(args.base_npz, n=args.patch_size, scan_step=args.scan_step, seed=seed)
    else:
        if args.object_size < args.patch_size + 16:
            raise UsageError(f"--object-size {args.object_size} is too small for --patch-size {args.patch_size}")
        sample = default_sample(args.patch_size, args.object_size, args.scan_step, seed)
    config = SweepConfig(args.output_root, list(design.dose_list), args.scan_step,
                         None if args.base_npz else args.object_size, show_progress=sys.stderr.isatty())
    manifest = run_sweep(sample, design, config)
    for rec in manifest["doses"]:
        counts = {s: f["n_positions"] for s, f in rec["files"].items()}
        print(f"dose {rec['dose']:g}: mean counts {rec['measured_mean_counts']:.1f}, "
              f"intensity_scale {rec['intensity_scale']:.4g}, train {counts['train']}, test {counts['test']} "
              f"-> {args.output_root / rec['directory']}")
    print(f"manifest: {args.output_root / 'run_manifest.json'}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "generate":
            _generate(args)
        elif args.command == "base":
            sample = default_sample(args.patch_size, args.object_size, args.scan_step,
                                    int(get_study_design().rng_seeds["simulation"]))
            print(f"base sample -> {save_base_npz(sample, args.output)}")
        elif args.command == "validate":
            for path in args.files:
                meta = validate_dataset(path, args.gridsize, args.neighbor_count)
                print(f"{path}: valid (dose {meta.get('dose')}, N {meta.get('N')})")
    except UsageError as exc:
        parser.error(str(exc))
    except (ContractError, ValueError, OSError) as exc:
        print(f"{PROG}: error: {error_line(exc)}", file=sys.stderr)
        return 1
    return 0
