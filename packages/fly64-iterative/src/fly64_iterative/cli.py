"""``fly64-iterative run``: Phase F's command line (filters and usage errors as ``fly64-train run``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from fly64_data.cli_common import command_line, positive_int
from fly64_iterative import __version__
from fly64_iterative.engine import ENGINES, NOISE_MODELS, EngineConfig
from fly64_train.core.device import normal_device
from fly64_train.studies.filters import DistinctSeeds, add_filters, check_filters
from fly64_train.training.option import seed as seed_type

PROG = "fly64-iterative"
COMMANDS = ("run",)

EPILOG = """\
example:
  fly64-iterative run --phase-c-root study/phase_c --phase-d-root study/phase_d --artifact-root study/phase_f
  fly64-iterative run ... --dose 1000 --view baseline --engine epie --epochs 100 --device cpu
  fly64-iterative run ... --artifact-root study/phase_f_pinn --pinn-start study/phase_e   # PINN + LSQML

Reconstructs every dose x view job's test split (the positions and patterns Phase E scores) with
pty-chi from a flat object, the simulation's probe fixed and exact positions; scores it with Phase E's
scorer (flat floor and information score included). Every test split is checked against
run_manifest.json / overlap_manifest.json (sha256, dose) first. Outputs: <artifact-root>/dose_<int>/
<view>/gs<g>/ (reconstruction.h5, reconstruction.png, iterative.log) and
<artifact-root>/iterative_manifest.json. A rerun skips finished jobs. Exit status 1 if any job failed."""


def build_parser() -> argparse.ArgumentParser:
    default = EngineConfig()
    parser, sub = command_line(PROG, COMMANDS, __version__, description=__doc__, epilog=EPILOG,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    run = sub.add_parser("run", help="reconstruct every dose x view test split with pty-chi",
                         description="fly64 study, Phase F: pty-chi reconstruction of each Phase E job's test split.",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    roots = run.add_argument_group("data and outputs")
    roots.add_argument("--phase-c-root", required=True, type=Path, help="Phase C output folder")
    roots.add_argument("--phase-d-root", required=True, type=Path, help="Phase D output folder")
    roots.add_argument("--artifact-root", required=True, type=Path,
                       help="where job folders and iterative_manifest.json go (nothing is written elsewhere)")
    filters = add_filters(run)
    filters.add_argument("--seeds", action=DistinctSeeds, type=seed_type, metavar="S",
                         help="one reconstruction per cell and seed (Phase E's replicate layout, seed_<s>/); one "
                              "seed seeds the run (torch, numpy, pty-chi's minibatch order)")
    engine = run.add_argument_group("pty-chi")
    engine.add_argument("--engine", choices=ENGINES, default=default.engine,
                        help=f"reconstructor (default: {default.engine}); each through pty-chi's own option class")
    engine.add_argument("--epochs", type=positive_int, default=default.epochs, metavar="N",
                        help=f"iterations over all patterns (default: {default.epochs})")
    engine.add_argument("--batch-size", type=positive_int, default=default.batch_size, metavar="N",
                        help=f"patterns per update (default: {default.batch_size})")
    engine.add_argument("--noise-model", choices=NOISE_MODELS,
                        help="lsqml's likelihood (default: poisson); epie and dm fit amplitudes (gaussian)")
    engine.add_argument("--device", type=_device, default=default.device, metavar="DEVICE",
                        help="auto: the GPU when torch sees one (default); cpu; cuda or cuda:K (gpu, gpu:K: "
                             "the same), the names fly64-train's --accelerator and evaluate --device take")
    engine.add_argument("--no-information", dest="information", action="store_false",
                        help="skip the second reconstruction (from half of the photons) of the information score")
    engine.add_argument("--pinn-start", type=Path, metavar="PHASE_E_ROOT",
                        help="start each fit from the PINN's prediction of the same photons instead of a flat "
                             "object (\"PINN + LSQML\"): the bundle Phase E's training manifest in PHASE_E_ROOT "
                             "records for the same cell; use another --artifact-root than the flat-start run's")
    run.set_defaults(handler=run_command, command_parser=run, gridsize=None)
    return parser


def _device(text: str) -> str:
    """``--device``: a name of the one device vocabulary (fly64_train.core.device), read as its canonical
    spelling (``gpu:1`` -> ``cuda:1``) so the run and its records see one name."""
    try:
        return normal_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run_command(args: argparse.Namespace) -> int:
    """Run the selected jobs; 1 if any failed or the inputs do not check out."""
    from fly64_data.contract import ContractError
    from fly64_iterative.ptychi_import import EngineUnavailable
    from fly64_iterative.runner import IterativeRunConfig, run_study
    from fly64_manifest import ManifestError
    from fly64_train.studies.matrix import MissingPhaseCError

    parser = args.command_parser
    check_filters(parser, args)
    engine = EngineConfig(engine=args.engine, epochs=args.epochs, batch_size=args.batch_size,
                          noise_model=args.noise_model, device=args.device)
    try:
        engine.check()
    except ValueError as exc:
        parser.error(str(exc).replace("noise_model", "--noise-model").replace("engine ", "--engine ", 1))
    if not args.phase_c_root.is_dir():
        return fail(f"{args.phase_c_root}: --phase-c-root folder not found (run `make data` first)")
    if args.pinn_start is not None and not args.pinn_start.is_dir():
        return fail(f"{args.pinn_start}: --pinn-start folder not found (a Phase E root: run `make train` first)")
    cfg = IterativeRunConfig(args.phase_c_root, args.phase_d_root, args.artifact_root, engine=engine,
                             doses=args.dose, views=args.view, seeds=args.seeds, information=args.information,
                             pinn_start_root=args.pinn_start)
    try:
        outcome = run_study(cfg)
    except (MissingPhaseCError, ContractError, ManifestError, EngineUnavailable, ValueError, OSError) as exc:
        return fail(str(exc))
    return 1 if outcome.failed else 0


def fail(message: str) -> int:
    """Print a one-line error; exit status 1 (bad input or failed work, not bad usage)."""
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Parse and dispatch; usage errors exit 2 with one line."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        parser.error("no command given")
    if not argv[0].startswith("-") and argv[0] not in COMMANDS:
        parser.error(f"unknown command {argv[0]!r}")
    args = parser.parse_args(argv)
    return args.handler(args)
