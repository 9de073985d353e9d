"""``fly64-manifest`` command line."""

from __future__ import annotations

import argparse
import sys

from fly64_manifest.io import ManifestError, read_json
from fly64_manifest.schema import KINDS, validate

_FILENAME_KINDS = {"run_manifest.json": "run_manifest"}


def _guess_kind(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    if name in _FILENAME_KINDS:
        return _FILENAME_KINDS[name]
    raise ManifestError(f"{path}: cannot tell the artifact kind from the file name; pass --kind")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fly64-manifest", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_val = sub.add_parser("validate", help="validate one JSON artifact against its schema")
    p_val.add_argument("file")
    p_val.add_argument("--kind", choices=sorted(KINDS), help="artifact kind (default: from the file name)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "validate":
            kind = args.kind or _guess_kind(args.file)
            validate(read_json(args.file), kind, source=args.file)
            print(f"{args.file}: valid {kind}")
    except ManifestError as exc:
        print(f"fly64-manifest: error: {exc}", file=sys.stderr)
        return 1
    return 0
