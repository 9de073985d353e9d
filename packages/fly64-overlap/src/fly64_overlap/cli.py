"""``fly64-overlap``: build the dense and sparse overlap views of a Phase C run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from fly64_data.cli_common import Accumulate, OneLineParser, error_line, positive_finite_float, positive_int
from fly64_data.contract import ContractError
from fly64_data.design import get_study_design
from fly64_manifest import ManifestError
from fly64_overlap import __version__
from fly64_overlap.spacing import DEFAULT_SPACING_BASIS, SPACING_BASES
from fly64_overlap.views import (
    OverlapConfig,
    OverlapError,
    OverlapUsageError,
    build_views,
    default_min_positions,
    matched_name,
)

PROG = "fly64-overlap"
EXIT_DATA = 1


def build_parser() -> argparse.ArgumentParser:
    design = get_study_design()
    views = ", ".join(f"{name} (f = {f:g}, S = {design.spacing_thresholds[name]:g} px)"
                      for name, f in design.overlap_views.items())
    parser = OneLineParser(
        prog=PROG,
        description=(
            "Phase D of the fly64 study: derive the overlap views of every Phase C dose.\n\n"
            f"views: {views}\n\n"
            "For each dose, view and split (train, test) the scan positions are thinned to a subset\n"
            "at least S = (1 - f) N apart (greedy in an order fixed by the design's subsampling seed,\n"
            "so the same inputs always give the same views). The overlap actually reached is then\n"
            "measured: probe diameter from probeGuess (95 % encircled |P|^2), nearest-neighbour,\n"
            "image-based and gs2 group-based disc-overlap fractions."
        ),
        epilog=(
            "output:\n"
            "  <output-root>/dose_<int>/<view>/<view>_train.npz, <view>_test.npz, <view>_metrics.json\n"
            "  <output-root>/overlap_manifest.json (every dose x view: ok, or skipped with a reason)\n"
            "  A view whose train or test split keeps fewer than --min-positions positions is skipped\n"
            "  and recorded in the manifest; that is not an error.\n\n"
            "examples:\n"
            "  fly64-overlap --phase-c-root study/phase_c --output-root study/phase_d\n"
            "  fly64-overlap --phase-c-root study/phase_c --output-root study/phase_d --dose 1000 --view dense\n\n"
            "exit status: 0 success, 1 bad or missing data (one line naming the file), 2 bad command line"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--phase-c-root", "--phase_c_root", dest="phase_c_root", type=Path, required=True,
                        metavar="DIR", help="Phase C output folder (holds run_manifest.json and dose_<int>/)")
    parser.add_argument("--output-root", "--output_root", dest="output_root", type=Path, required=True,
                        metavar="DIR", help="folder to write the views into (created if missing)")
    parser.add_argument("--dose", dest="doses", type=positive_finite_float, action=Accumulate,
                        metavar="D",
                        help="Phase C dose(s) to process, in photons per pattern, e.g. --dose 1000 10000 "
                             "(repeatable; default: every dose in the run)")
    parser.add_argument("--view", dest="views", action=Accumulate, choices=list(design.overlap_views),
                        metavar="VIEW", help=f"view(s) to build: {' | '.join(design.overlap_views)} "
                                             "(repeatable; default: all)")
    parser.add_argument("--min-positions", "--min_positions", dest="min_positions", type=positive_int,
                        default=default_min_positions(design), metavar="K",
                        help="fewest positions a split may keep before the view is skipped (default: "
                             f"{default_min_positions(design)} = neighbor_count K + 1, the smallest split "
                             "in which a gs2 group can be formed)")
    parser.add_argument("--spacing-basis", "--spacing_basis", dest="spacing_basis", choices=SPACING_BASES,
                        default=DEFAULT_SPACING_BASIS,
                        help="length the view's f applies to: patch (S = (1 - f) N, the design's rule) or probe "
                             "(S = (1 - f) D, D the measured probe diameter, so f is about the footprint overlap "
                             f"reached) (default: {DEFAULT_SPACING_BASIS})")
    parser.add_argument("--match-positions", "--match_positions", dest="match_positions",
                        choices=list(design.overlap_views), metavar="VIEW",
                        help="also write equal-positions controls: every other view, and a gs1 control thinned "
                             f"from the Phase C positions ({matched_name('baseline')}), thinned to as many "
                             "positions per split as VIEW, as <view>_matched (an error if VIEW is skipped)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    config = OverlapConfig(
        phase_c_root=args.phase_c_root,
        output_root=args.output_root,
        doses=tuple(args.doses) if args.doses else None,
        views=tuple(dict.fromkeys(args.views)) if args.views else None,
        min_positions=args.min_positions,
        spacing_basis=args.spacing_basis,
        match_positions=args.match_positions,
        show_progress=sys.stderr.isatty(),
    )
    try:
        manifest = build_views(config)
    except OverlapUsageError as exc:
        parser.error(error_line(exc))
    except (OverlapError, ContractError, ManifestError, OSError) as exc:
        print(f"{PROG}: error: {error_line(exc)}", file=sys.stderr)
        return EXIT_DATA
    ok = [e for e in manifest["views"] if e["status"] == "ok"]
    print(f"{PROG}: {len(ok)} view(s) written, {manifest['skipped_count']} skipped -> "
          f"{Path(args.output_root) / 'overlap_manifest.json'}")
    for skipped in manifest["skipped_views"]:
        print(f"{PROG}: skipped dose {skipped['dose']:g} {skipped['view']}: {skipped['reason']}")
    return 0

