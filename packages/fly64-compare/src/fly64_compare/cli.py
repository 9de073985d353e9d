"""``fly64-compare`` command line: ``run`` writes the Phase G comparison of PtychoPINN and the iterative baseline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fly64_compare.run import CompareConfig, compare
from fly64_manifest import ManifestError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fly64-compare", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="compare the Phase E and Phase F manifests; write comparison.md, .csv, figures")
    defaults = CompareConfig()
    run.add_argument("--phase-e-root", type=Path, default=defaults.phase_e_root,
                     help="Phase E artifact root holding training_manifest.json (default: %(default)s)")
    run.add_argument("--phase-f-root", type=Path, default=defaults.phase_f_root,
                     help="Phase F artifact root holding iterative_manifest.json (default: %(default)s)")
    run.add_argument("--output", type=Path, default=defaults.output,
                     help="comparison folder, replaced as a whole when complete (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    cfg = CompareConfig(phase_e_root=args.phase_e_root, phase_f_root=args.phase_f_root, output=args.output)
    try:
        cfg.check()
    except ValueError as exc:
        parser.error(str(exc))  # usage: exit 2
    try:
        result = compare(cfg)
    except (ManifestError, OSError) as exc:
        print(f"fly64-compare: error: {exc}", file=sys.stderr)
        return 1
    ok = sum(1 for c in result.cells if all(m.state == "ok" for m in (c.pinn, c.iterative)))
    print(f"fly64-compare: {len(result.cells)} cells ({ok} with both methods) -> {result.output}: "
          f"{', '.join(result.files)}")
    return 0
