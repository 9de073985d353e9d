"""Wall time of the tiny study through `fly64-train run`: in process, and on 1, 2 and 3 local Dask workers.

Builds the tiny study (N = 32) with the real ``fly64-data`` and ``fly64-overlap``
CLIs, then runs the real ``fly64-train run`` command (a fresh process each time,
so imports and cluster start are counted) into a fresh artifact root per setting,
and prints one line per setting: wall time, exit status, jobs succeeded and the
speed-up over one Dask worker.

    .venv/bin/python benchmarks/bench_study_workers.py [--workers 1 2 3] [--epochs 2] [--dose D ...] [--no-local]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fly64_data.cli import main as data_main
from fly64_overlap.cli import main as overlap_main

TINY_STUDY_DATA = ["--patch-size", "32", "--object-size", "192", "--scan-step", "8"]
TINY_TRAIN = ["--base-width", "4", "--depth", "3", "--convs-per-level", "1", "--no-progress-bar"]


def build_study(root: Path) -> None:
    assert data_main(["generate", "--output-root", str(root / "phase_c"), *TINY_STUDY_DATA]) == 0
    assert overlap_main(["--phase-c-root", str(root / "phase_c"), "--output-root", str(root / "phase_d")]) == 0


def timed_run(root: Path, artifact: Path, epochs: int, doses: list[str], executor: list[str]) -> tuple[float, int, int]:
    """Seconds, exit status and successful jobs of one ``fly64-train run``."""
    command = [sys.executable, "-m", "fly64_train", "run", "--phase-c-root", str(root / "phase_c"),
               "--phase-d-root", str(root / "phase_d"), "--artifact-root", str(artifact),
               "--max-epochs", str(epochs), *TINY_TRAIN, *(a for d in doses for a in ("--dose", d)), *executor]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        print(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no error output", file=sys.stderr)
        return seconds, done.returncode, 0
    jobs = json.loads((artifact / "training_manifest.json").read_text())["jobs"]
    return seconds, done.returncode, sum(j["result"]["status"] == "success" for j in jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dose", action="append", default=[], help="only this dose's jobs (repeatable)")
    parser.add_argument("--no-local", action="store_true", help="skip the in-process reference run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_study(root)
        print(f"tiny study, {args.epochs} epochs per job, training + evaluation, doses: {args.dose or 'all'}")
        if not args.no_local:
            seconds, code, ok = timed_run(root, root / "local", args.epochs, args.dose, [])
            print(f"local (in process): {seconds:6.1f} s, exit {code}, {ok} jobs succeeded", flush=True)
        one = None
        for n in args.workers:
            seconds, code, ok = timed_run(root, root / f"dask{n}", args.epochs, args.dose,
                                          ["--executor", "dask", "--workers", str(n)])
            one = one or seconds
            print(f"dask, {n} worker(s): {seconds:6.1f} s, exit {code}, {ok} jobs succeeded, "
                  f"speed-up x{one / seconds:.2f}", flush=True)


if __name__ == "__main__":
    main()
