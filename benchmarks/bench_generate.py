"""Phase C simulation throughput and peak memory.

Runs the default sweep (three doses, N = 128, embedded sample) into a temporary
folder and prints patterns simulated per second and the process's peak RSS.
Target: >= 2,000 patterns/s on 2 cores; peak memory bounded by one dose's
output (it must not grow with the number of doses).

    .venv/bin/python benchmarks/bench_generate.py [--doses 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from fly64_data.design import get_study_design
from fly64_data.sample import default_sample
from fly64_data.simulate import SweepConfig, noiseless_intensity, poisson_counts, run_sweep


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doses", nargs="+", type=float, default=None)
    args = parser.parse_args()
    design = get_study_design(**({"dose_list": args.doses} if args.doses else {}))
    sample = default_sample(design.patch_size_pixels)
    n = sample.xcoords.size

    t0 = time.perf_counter()
    _, intensity = noiseless_intensity(sample)
    t_physics = time.perf_counter() - t0
    t0 = time.perf_counter()
    for dose in design.dose_list:
        poisson_counts(intensity, dose, seed=1)
    t_noise = time.perf_counter() - t0
    total = n * len(design.dose_list)
    print(f"patch extraction + far field: {n} patterns in {t_physics:.2f} s = {n / t_physics:,.0f} patterns/s")
    print(f"simulation (physics once + Poisson per dose, no I/O): {total} patterns in {t_physics + t_noise:.2f} s "
          f"= {total / (t_physics + t_noise):,.0f} patterns/s")
    del intensity

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_sweep(sample, design, SweepConfig(Path(tmp), design.dose_list, 20.0, 1152))
        elapsed = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in Path(tmp).rglob("*.npz")) / 2**20
    print(f"full sweep: {len(design.dose_list)} doses x {n} patterns = {total} in {elapsed:.2f} s "
          f"= {total / elapsed:,.0f} patterns/s (with validation, sha256 and fsync-ed NPZ writes, {size_mb:,.0f} MB)")
    print(f"one dose's output: {size_mb / len(design.dose_list):,.0f} MB; peak RSS: {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
