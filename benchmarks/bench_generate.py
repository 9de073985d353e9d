"""Phase C simulation throughput and peak memory.

Prints, for the default sample (N = 128, 2601 positions):

- patterns simulated per second (patch extraction + far field once, Poisson draw per dose), no I/O;
- the whole sweep including contract validation, sha256 and fsync-ed NPZ writes;
- peak RSS of a one-dose and a three-dose sweep, each in a fresh process, to show that memory is
  bounded by one dose's output and does not grow with the number of doses.

Target: >= 2,000 patterns/s on 2 cores.

    .venv/bin/python benchmarks/bench_generate.py
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fly64_data.design import get_study_design
from fly64_data.sample import DEFAULT_OBJECT_SIZE, DEFAULT_SCAN_STEP, default_sample
from fly64_data.simulate import SweepConfig, noiseless_intensity, poisson_counts, run_sweep


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def sweep(doses: list[float]) -> dict[str, float]:
    """One sweep in this process; returns timing, output size and peak RSS."""
    design = get_study_design(dose_list=doses)
    sample = default_sample(design.patch_size_pixels)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_sweep(sample, design, SweepConfig(Path(tmp), doses, DEFAULT_SCAN_STEP, DEFAULT_OBJECT_SIZE))
        elapsed = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in Path(tmp).rglob("*.npz")) / 2**20
    return {"patterns": sample.xcoords.size * len(doses), "seconds": elapsed, "output_mb": size_mb,
            "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--sweep-json":
        print(json.dumps(sweep([float(d) for d in sys.argv[2:]])))
        return
    design = get_study_design()
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
    print(f"simulation of {len(design.dose_list)} doses (physics once + Poisson per dose, no I/O): "
          f"{total} patterns in {t_physics + t_noise:.2f} s = {total / (t_physics + t_noise):,.0f} patterns/s")
    del intensity
    for doses in ([design.dose_list[0]], design.dose_list):
        out = subprocess.run([sys.executable, __file__, "--sweep-json", *map(str, doses)], check=True,
                             capture_output=True, text=True).stdout
        r = json.loads(out)
        print(f"full sweep, {len(doses)} dose(s): {r['patterns']:.0f} patterns in {r['seconds']:.2f} s = "
              f"{r['patterns'] / r['seconds']:,.0f} patterns/s with validation, sha256 and fsync-ed writes; "
              f"output {r['output_mb']:,.0f} MB, peak RSS {r['peak_rss_mb']:,.0f} MB")


if __name__ == "__main__":
    main()
