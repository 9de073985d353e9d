"""Training benchmark for fly64-train at N = 128.

Prints, in one run on this machine:

* training throughput (groups/s) of the default PtychoPINN for gs1 and gs2,
* the CNN's GFLOP per optimisation step (forward + backward ~ 3x forward, convolutions only),
  the GFLOP/s that achieves, and next to it the machine's dense float32 matmul GFLOP/s
  measured in the same process with the same thread count,
* peak RSS of a fresh process that validates, fully reads (one pass over every pattern)
  and trains on a 1,000- and a 10,000-pattern dataset; the two must differ by < 200 MB.

Usage::

    .venv/bin/python benchmarks/bench_train.py [--threads 2] [--steps 8] [--workdir /tmp/bench_train]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

N = 128
BATCH = 16


def make_base_dataset(path: Path, count: int) -> Path:
    """A real DATA-001 file: the embedded sample, noisy at dose 1e5, first ``count`` positions (cycled)."""
    from fly64_data.contract import utc_now, write_dataset
    from fly64_data.physics import extract_patches, far_field_intensity
    from fly64_data.sample import default_sample

    sample = default_sample(N)
    idx = np.arange(count) % sample.xcoords.size
    y, x = sample.ycoords[idx], sample.xcoords[idx]
    patches = extract_patches(sample.object, y, x, N)
    intensity = far_field_intensity(sample.probe * patches)
    scale = float(np.sqrt(1e5 / intensity.sum(axis=(1, 2), dtype=np.float64).mean()))
    counts = np.random.default_rng(0).poisson(intensity.astype(np.float64) * scale**2)
    arrays = {"diffraction": (np.sqrt(counts) / scale).astype(np.float32), "Y": patches,
              "objectGuess": sample.object, "probeGuess": sample.probe,
              "xcoords": x.astype(np.float64), "ycoords": y.astype(np.float64), "scan_index": idx.astype(np.int64)}
    return write_dataset(path, arrays, _meta(scale, utc_now()))


def _meta(scale: float, created: str) -> dict:
    return {"schema_version": "1.0", "created": created, "producer": {"package": "bench_train", "version": "0"},
            "dose": 1e5, "measured_mean_counts": 1e5, "intensity_scale": scale, "N": N,
            "seeds": {"simulation": 0}, "sources": [], "data_transformations": []}


def tile_dataset(src: Path, dst: Path, repeats: int) -> Path:
    """Write a ``repeats``-times larger DATA-001 NPZ by streaming (bounded memory, ZIP_STORED)."""
    from fly64_data.contract import load_npz

    with load_npz(src) as npz:
        arrays = {k: npz[k] for k in npz.files}
    per_position = {"diffraction", "Y", "xcoords", "ycoords", "scan_index"}
    tmp = dst.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key in sorted(arrays):
            arr = arrays[key]
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as member:
                if key not in per_position:
                    np.lib.format.write_array(member, arr, allow_pickle=False)
                    continue
                shape = (arr.shape[0] * repeats, *arr.shape[1:])
                header = {"descr": np.lib.format.dtype_to_descr(arr.dtype), "fortran_order": False, "shape": shape}
                np.lib.format.write_array_header_2_0(member, header)
                for r in range(repeats):
                    block = arr + (r * arr.shape[0] if key == "scan_index" else 0)
                    member.write(np.ascontiguousarray(block).tobytes())
    os.replace(tmp, dst)
    return dst


def matmul_gflops(size: int = 1024, seconds: float = 1.5) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - start) / 1e9


def throughput(path: Path, gridsize: int, steps: int) -> dict:
    from fly64_train.backends.torch.group_dataset import GroupDataset
    from fly64_train.backends.torch.model import PtychoPINN, gflop_per_group
    from fly64_train.data.grouping import make_groups
    from fly64_train.data.reader import open_dataset
    from fly64_train.training.model_config import ModelConfig

    info = open_dataset(path, gridsize, 7)
    groups = make_groups(info.ycoords, info.xcoords, gridsize, 7, seed=123)
    data = GroupDataset(info.diffraction, groups)
    cfg = ModelConfig(patch_size=N, gridsize=gridsize)
    torch.manual_seed(0)
    model = PtychoPINN(cfg, info.probe, info.intensity_scale)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(data, batch_size=BATCH, shuffle=True)
    it = iter(loader)

    def step() -> None:
        batch = next(it)
        offsets = batch["offsets"] if gridsize > 1 else None
        loss = model.loss(batch["diffraction"], offsets)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up: allocator, oneDNN kernel selection
    start = time.perf_counter()
    for _ in range(steps):
        step()
    per_step = (time.perf_counter() - start) / steps
    gflop_step = 3 * gflop_per_group(cfg) * BATCH
    return {"gridsize": gridsize, "groups_per_s": BATCH / per_step, "patterns_per_s": BATCH * cfg.group_size / per_step,
            "step_s": per_step, "gflop_per_step": gflop_step, "achieved_gflops": gflop_step / per_step}


def rss_child(path: str, job_dir: str, threads: int) -> None:
    """Validate + read every pattern + a few real training steps; print peak RSS (MB)."""
    torch.set_num_threads(threads)
    from fly64_train.backends.torch.group_dataset import GroupDataset
    from fly64_train.backends.torch.train import train_job
    from fly64_train.data.grouping import make_groups
    from fly64_train.data.reader import open_dataset
    from fly64_train.training.config import TrainConfig

    info = open_dataset(path, 1)
    data = GroupDataset(info.diffraction, make_groups(info.ycoords, info.xcoords, 1))
    total = 0.0
    for batch in torch.utils.data.DataLoader(data, batch_size=64):
        total += float(batch["diffraction"].sum())
    train_job(TrainConfig(train_path=path, job_dir=job_dir, max_epochs=1, limit_train_batches=3, val_fraction=0.0,
                          logger="none", progress_bar=False, resume=False))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"patterns": info.n, "peak_rss_mb": peak_mb, "checksum": total}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--rss-child", nargs=2, metavar=("NPZ", "JOB_DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(*args.rss_child, args.threads)
        return
    torch.set_num_threads(args.threads)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_train-"))
    work.mkdir(parents=True, exist_ok=True)
    small = work / "patterns_1000.npz"
    if not small.exists():
        make_base_dataset(small, 1000)
    big = work / "patterns_10000.npz"
    if not big.exists():
        tile_dataset(small, big, 10)

    print(f"torch {torch.__version__}, {args.threads} thread(s), N = {N}, batch {BATCH} groups")
    mm = matmul_gflops()
    for gs in (1, 2):
        r = throughput(small, gs, args.steps)
        print(f"gs{gs}: {r['groups_per_s']:.1f} groups/s ({r['patterns_per_s']:.1f} patterns/s, "
              f"{r['step_s']:.2f} s/step); CNN {r['gflop_per_step']:.1f} GFLOP/step -> "
              f"{r['achieved_gflops']:.1f} GFLOP/s achieved vs {mm:.1f} GFLOP/s dense matmul "
              f"({100 * r['achieved_gflops'] / mm:.0f}%)")
    peaks = {}
    for path in (small, big):
        out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--rss-child",
                              str(path), str(work / f"job_{path.stem}")], capture_output=True, text=True, check=True)
        rec = json.loads(out.stdout.strip().splitlines()[-1])
        peaks[rec["patterns"]] = rec["peak_rss_mb"]
        print(f"peak RSS, {rec['patterns']:>6} patterns ({path.stat().st_size / 2**20:.0f} MB file): "
              f"{rec['peak_rss_mb']:.0f} MB")
    diff = peaks[10000] - peaks[1000]
    print(f"peak RSS difference 10,000 vs 1,000 patterns: {diff:+.0f} MB ({'OK' if abs(diff) < 200 else 'FAIL'}, "
          "limit 200 MB)")


if __name__ == "__main__":
    main()
