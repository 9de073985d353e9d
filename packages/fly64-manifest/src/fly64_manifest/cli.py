"""``fly64-manifest`` command line: validate a file, verify a study, summarise its jobs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fly64_manifest.io import ManifestError, read_json
from fly64_manifest.loaders import load_training_manifest
from fly64_manifest.schema import KINDS, validate
from fly64_manifest.summary import format_table, job_rows
from fly64_manifest.verify import verify

_FILENAME_KINDS = {
    "run_manifest.json": "run_manifest",
    "overlap_manifest.json": "overlap_manifest",
    "training_manifest.json": "training_manifest",
    "skip_summary.json": "skip_summary",
    "iterative_manifest.json": "iterative_manifest",
}


def _guess_kind(path: str, doc: object) -> str:
    """Kind from the file name, else from the document's own ``kind`` field."""
    name = Path(path).name
    if name in _FILENAME_KINDS and _FILENAME_KINDS[name] in KINDS:
        return _FILENAME_KINDS[name]
    if name.endswith("_metrics.json") and "overlap_metrics" in KINDS:
        return "overlap_metrics"
    if isinstance(doc, dict) and doc.get("kind") in KINDS:
        return doc["kind"]
    raise ManifestError(f"{path}: cannot tell the artifact kind from the file name; pass --kind")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fly64-manifest", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_val = sub.add_parser("validate", help="validate one JSON artifact against its schema")
    p_val.add_argument("file")
    p_val.add_argument("--kind", choices=sorted(KINDS), help="artifact kind (default: from the file name)")
    p_ver = sub.add_parser("verify", help="re-hash bundles and check a study against its manifests")
    p_ver.add_argument("root", help="study root (phase_c/, phase_d/, phase_e/[, phase_f/]) or a Phase E or F "
                                    "artifact root")
    p_ver.add_argument("--rehash-data", action="store_true", help="also re-hash Phase C/D data files (slow)")
    p_sum = sub.add_parser("summary", help="table of Phase E jobs: status, loss, metrics")
    p_sum.add_argument("root", help="study root, Phase E artifact root or training_manifest.json")
    p_sum.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "validate":
            doc = read_json(args.file)
            kind = args.kind or _guess_kind(args.file, doc)
            validate(doc, kind, source=args.file)
            print(f"{args.file}: valid {kind}")
        elif args.command == "verify":
            problems = verify(args.root, rehash_data=args.rehash_data)
            for problem in problems:
                print(problem)
            if problems:
                print(f"fly64-manifest: {len(problems)} problem(s) in {args.root}", file=sys.stderr)
                return 1
            print(f"{args.root}: verified")
        elif args.command == "summary":
            rows = job_rows(load_training_manifest(args.root))
            print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    except ManifestError as exc:
        print(f"fly64-manifest: error: {exc}", file=sys.stderr)
        return 1
    return 0
