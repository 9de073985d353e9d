"""Time and peak memory of Phase D's selection and overlap metrics at 10^4, 10^5 and 10^6 positions.

Each size runs in a fresh subprocess so its peak RSS is its own. Positions are a
jittered raster at the study's step (20 px, +-2 px), the dense view (S = 38.4 px)
being the costliest: it keeps the most positions. Run::

    .venv/bin/python benchmarks/bench_overlap.py [--sizes 10000 100000 1000000] [--view dense]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

SIZES = (10_000, 100_000, 1_000_000)
BUDGET_S = 10.0  # 10^6 positions must finish within this on 2 cores


def _one(n: int, view: str) -> dict[str, float]:
    import numpy as np

    from fly64_data.design import get_study_design
    from fly64_overlap.metrics import MetricsConfig, measure_overlap
    from fly64_overlap.selection import select_min_spacing

    design = get_study_design()
    side = int(round(np.sqrt(n)))
    rng = np.random.default_rng(0)
    g = np.arange(side) * 20.0
    gy, gx = np.meshgrid(g, g, indexing="ij")
    x = gx.ravel() + rng.uniform(-2, 2, gx.size)
    y = gy.ravel() + rng.uniform(-2, 2, gx.size)
    t0 = time.perf_counter()
    sel = select_min_spacing(x, y, design.spacing_thresholds[view], design.rng_seeds["subsampling"])
    t1 = time.perf_counter()
    measure_overlap(x[sel.mask], y[sel.mask], MetricsConfig(diameter=47.0))
    t2 = time.perf_counter()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    return {"n": int(x.size), "kept": sel.kept, "select_s": t1 - t0, "metrics_s": t2 - t1,
            "total_s": t2 - t0, "peak_rss_mib": peak_mib}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--view", default="dense", choices=["dense", "sparse"])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_one(args.child, args.view)))
        return 0
    print(f"{'positions':>10} {'kept':>8} {'select s':>9} {'metrics s':>10} {'total s':>8} {'peak RSS MiB':>13}")
    slow = False
    for n in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--view", args.view],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out)
        print(f"{r['n']:>10} {r['kept']:>8} {r['select_s']:>9.2f} {r['metrics_s']:>10.2f} "
              f"{r['total_s']:>8.2f} {r['peak_rss_mib']:>13.0f}")
        slow |= r["n"] >= 1_000_000 and r["total_s"] > BUDGET_S
    if slow:
        print(f"FAIL: 10^6 positions took longer than {BUDGET_S:g} s", file=sys.stderr)
    return 1 if slow else 0


if __name__ == "__main__":
    raise SystemExit(main())
