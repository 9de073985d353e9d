"""Training benchmark for fly64-train at N = 128.

Prints, in one run on this machine:

* one JSON line per setting (gridsize, patterns per step, precision) on the chosen device:
  training patterns/s of the default PtychoPINN (``"backend": "torch"``), the CNN's TFLOP per step (forward + backward
  ~ 3x forward, convolutions only), the TFLOP/s that achieves, and the dense float32 matmul
  TFLOP/s measured in the same process (same device, same thread count),
* with ``--backend tensorflow`` (on CPU by default), one JSON line per gridsize and patterns per
  step with the TensorFlow backend's patterns/s (float32, same data, same photon split, Adam,
  the same thread count, after a warm-up that traces the train step), next to torch's rows,
* on CPU, peak RSS of a fresh process that validates, fully reads (one pass over every pattern)
  and trains on a 1,000- and a 10,000-pattern dataset; the two must differ by < 200 MB.

Usage::

    .venv/bin/python benchmarks/bench_train.py [--device auto|cpu|cuda] [--threads 2] [--steps 8]
        [--gridsize 1 2] [--batch 16 128] [--precision 32-true bf16-mixed] [--channels-last]
        [--backend torch tensorflow] [--skip-rss] [--workdir /tmp/bench_train]
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
    from fly64_data.npz_reader import read_npz

    arrays = read_npz(src)
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


def matmul_tflops(device: torch.device, size: int = 2048, seconds: float = 1.5) -> float:
    """Dense float32 matmul rate (full fp32: ``highest`` precision, no TF32) on ``device``."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        a = torch.randn(size, size, device=device)
        b = torch.randn(size, size, device=device)
        torch.mm(a, b)
        _sync(device)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(4):
                torch.mm(a, b)
            count += 4
            _sync(device)
        return 2 * size**3 * count / (time.perf_counter() - start) / 1e12
    finally:
        torch.set_float32_matmul_precision(previous)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(path: Path, device: torch.device, gridsize: int, patterns: int, precision: str, steps: int,
               channels_last: bool = False) -> dict:
    """Training steps/s of the default PtychoPINN as the torch backend runs it: batches gathered on the
    device (:class:`ResidentGroups`), photon split 0.5, Adam, autocast for ``bf16-mixed``."""
    from fly64_data.grouping import make_groups
    from fly64_train.backends.torch.device import device_defaults
    from fly64_train.backends.torch.model import PtychoPINN, gflop_per_group
    from fly64_train.backends.torch.resident_batches import ResidentGroups
    from fly64_train.data.reader import open_dataset
    from fly64_train.training.model_config import ModelConfig

    info = open_dataset(path, gridsize, 7)
    groups = make_groups(info.ycoords, info.xcoords, gridsize)
    data = ResidentGroups(info.diffraction, groups)
    cfg = ModelConfig(patch_size=N, gridsize=gridsize)
    torch.manual_seed(0)
    model = PtychoPINN(cfg, info.probe, info.intensity_scale).to(device)
    if gridsize > 1 and device_defaults(device.type).fixed_canvas:
        model.fix_canvas(groups.offsets)  # as TrainingJob does on a GPU: one canvas, no per-step sync
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)  # as PtychoPINNModule on CPU and CUDA
    batch = max(1, patterns // cfg.group_size)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0)).to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")

    def step(i: int) -> None:
        rows = order[(i * batch) % max(1, len(data) - batch):][:batch]
        b = data.gather(rows)
        with autocast:
            loss = model.loss(b["diffraction"], b["offsets"] if gridsize > 1 else None, 0.5)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(2):  # warm-up: allocator, kernel selection
        step(i)
    _sync(device)
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    _sync(device)
    per_step = (time.perf_counter() - start) / steps
    tflop_step = 3 * gflop_per_group(cfg) * batch / 1e3  # forward + backward ~ 3x forward
    return {"gridsize": gridsize, "batch_groups": batch, "batch_patterns": batch * cfg.group_size,
            "precision": precision, "channels_last": channels_last,
            "patterns_per_s": round(batch * cfg.group_size / per_step, 1), "step_s": round(per_step, 5),
            "cnn_tflop_per_step": round(tflop_step, 5), "achieved_tflops": round(tflop_step / per_step, 4)}


def tf_throughput(path: Path, gridsize: int, patterns: int, steps: int, threads: int) -> dict:
    """Training patterns/s of the default PtychoPINN as the TensorFlow backend runs it (``model.fit``, float32)."""
    import fly64_train.backends.tensorflow  # noqa: F401, I001  (first: it loads TensorFlow without its log lines)
    import keras
    import tensorflow as tf
    from fly64_train.backends.tensorflow.model import PtychoPINN
    from fly64_data.grouping import make_groups
    from fly64_train.data.reader import open_dataset
    from fly64_train.training.model_config import ModelConfig

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    info = open_dataset(path, gridsize, 7)
    groups = make_groups(info.ycoords, info.xcoords, gridsize)
    cfg = ModelConfig(patch_size=N, gridsize=gridsize)
    batch = max(1, patterns // cfg.group_size)
    rows = np.arange(batch)
    diffraction = info.diffraction.read_rows(groups.indices[rows].ravel()).reshape(batch, cfg.group_size, N, N)
    data = tf.data.Dataset.from_tensors((diffraction.astype(np.float32), groups.offsets[rows].astype(np.float32),
                                         rows.astype(np.int64)))
    keras.utils.set_random_seed(0)
    model = PtychoPINN(cfg, info.probe, info.intensity_scale, count_split=0.5)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    model.fit(data.repeat(2), epochs=1, verbose=0, shuffle=False)  # warm-up: traces the train step
    start = time.perf_counter()
    model.fit(data.repeat(steps), epochs=1, verbose=0, shuffle=False)
    per_step = (time.perf_counter() - start) / steps
    return {"backend": "tensorflow", "gridsize": gridsize, "batch_groups": batch,
            "batch_patterns": batch * cfg.group_size, "precision": "32-true",
            "patterns_per_s": round(batch * cfg.group_size / per_step, 1), "step_s": round(per_step, 5),
            "device": f"cpu x{threads}", "tensorflow": tf.__version__}


def rss_child(path: str, job_dir: str, threads: int) -> None:
    """Validate + read every pattern + a few real training steps; print peak RSS (MB)."""
    torch.set_num_threads(threads)
    from fly64_data.grouping import make_groups
    from fly64_train.backends.torch.group_dataset import GroupDataset
    from fly64_train.backends.torch.train import train_job
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
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--threads", type=int, default=2, help="CPU intra-op threads")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--gridsize", type=int, nargs="+", action="extend", default=None)
    ap.add_argument("--batch", type=int, nargs="+", action="extend", default=None,
                    help="patterns per step (default: 16 on CPU; 16 128 256 on CUDA)")
    ap.add_argument("--precision", nargs="+", action="extend", default=None,
                    choices=("32-true", "bf16-mixed"))
    ap.add_argument("--channels-last", action="store_true",
                    help="measure both memory formats (default: the device default's format only)")
    ap.add_argument("--backend", nargs="+", action="extend", default=None, choices=("torch", "tensorflow"),
                    help="backends to time (default: both on CPU, torch on CUDA)")
    ap.add_argument("--skip-rss", action="store_true", help="skip the peak-RSS check")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--rss-child", nargs=2, metavar=("NPZ", "JOB_DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(*args.rss_child, args.threads)
        return
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_train-"))
    work.mkdir(parents=True, exist_ok=True)
    small = work / "patterns_1000.npz"
    if not small.exists():
        make_base_dataset(small, 1000)

    from fly64_train.backends.torch.device import device_defaults

    mm = matmul_tflops(device)
    defaults = device_defaults(device.type)
    defaults.apply()  # the settings the runner picks for this device (and its memory format, below)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()}"
    batches = args.batch or ([16] if device.type == "cpu" else [16, 128, 256])
    backends = args.backend or (["torch", "tensorflow"] if device.type == "cpu" else ["torch"])
    for gs in args.gridsize or (1, 2):
        for patterns in batches:
            if "tensorflow" in backends:
                print(json.dumps(tf_throughput(small, gs, patterns, args.steps, args.threads)), flush=True)
            if "torch" not in backends:
                continue
            for precision in args.precision or ("32-true", "bf16-mixed"):
                layouts = (False, True) if args.channels_last else (defaults.channels_last,)
                for channels_last in layouts:
                    r = throughput(small, device, gs, patterns, precision, args.steps, channels_last)
                    r.update(backend="torch", device=name, torch=torch.__version__, matmul_fp32_tflops=round(mm, 4),
                             fraction_of_matmul=round(r["achieved_tflops"] / mm, 3))
                    print(json.dumps(r), flush=True)
    if args.skip_rss or device.type != "cpu":
        return
    big = work / "patterns_10000.npz"
    if not big.exists():
        tile_dataset(small, big, 10)
    peaks = {}
    for path in (small, big):
        out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--rss-child",
                              str(path), str(work / f"job_{path.stem}")], capture_output=True, text=True, check=True)
        rec = json.loads(out.stdout.strip().splitlines()[-1])
        peaks[rec["patterns"]] = rec["peak_rss_mb"]
    diff = peaks[10000] - peaks[1000]
    print(json.dumps({"peak_rss_mb": peaks, "difference_mb": round(diff, 1), "ok": abs(diff) < 200,
                      "limit_mb": 200}))


if __name__ == "__main__":
    main()
