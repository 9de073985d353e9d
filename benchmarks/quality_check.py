"""Quality check: train one job per view on real Phase C/D data and score the test split.

Usage (from the repo root; Phase C/D data made with the fly64-data / fly64-overlap CLIs)::

    .venv/bin/python benchmarks/quality_check.py \
        --phase-c-root /tmp/f64q/phase_c --phase-d-root /tmp/f64q/phase_d --dose 100000 \
        --out /tmp/f64q/train --views baseline dense --max-minutes 14 --threads 2

Prints one JSON line per view with the training result summary and the Phase E+
evaluation's stitched test-split amplitude scores (Pearson, MAE, SSIM) next to a flat object's.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from fly64_train.backends.torch.train import train_job
from fly64_train.evaluation.evaluate import evaluate_bundle
from fly64_train.training.config import TrainConfig
from fly64_train.training.model_config import ModelConfig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase-c-root", required=True)
    ap.add_argument("--phase-d-root", default=None)
    ap.add_argument("--dose", type=int, default=100000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--views", nargs="+", default=["baseline", "dense"])
    ap.add_argument("--max-minutes", type=float, default=14.0)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-groups-gs2", type=int, default=None)
    ap.add_argument("--base-width", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None, help="groups per step (default: TrainConfig's)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for view in args.views:
        if view == "baseline":
            root, gs = Path(args.phase_c_root) / f"dose_{args.dose}", 1
            train, test = root / "patched_train.npz", root / "patched_test.npz"
        else:
            root, gs = Path(args.phase_d_root) / f"dose_{args.dose}" / view, 2
            train, test = root / f"{view}_train.npz", root / f"{view}_test.npz"
        minutes = int(args.max_minutes)
        seconds = int(round((args.max_minutes - minutes) * 60))
        cfg = TrainConfig(train_path=str(train), test_path=str(test), gridsize=gs,
                          job_dir=str(Path(args.out) / f"dose_{args.dose}" / view / f"gs{gs}"),
                          max_time=f"00:00:{minutes:02d}:{seconds:02d}", resume=False, progress_bar=False)
        if args.epochs:
            cfg.max_epochs = args.epochs
        if gs == 2 and args.n_groups_gs2:
            cfg.n_groups = args.n_groups_gs2
        if args.batch_size:
            cfg.batch_size = args.batch_size
        if args.base_width:
            cfg.model = ModelConfig(base_width=args.base_width)
        t0 = time.monotonic()
        result = train_job(cfg)
        train_s = time.monotonic() - t0
        metrics = evaluate_bundle(Path(cfg.job_dir) / result["bundle_path"], test).metrics()
        amplitude = {k: metrics["amplitude"].get(k) for k in ("pearson", "mae", "ssim")}
        flat = {k: metrics["floor"]["amplitude"].get(k) for k in ("mae", "ssim")}
        print(json.dumps({"view": view, "gridsize": gs, "train_seconds": round(train_s, 1),
                          "epochs": result["epochs_completed"], "final_loss": result["final_loss"],
                          "n_train_groups": result["n_train_groups"], "amplitude": amplitude, "flat": flat,
                          "coverage": metrics["coverage"], "pearson_ok": amplitude["pearson"] >= 0.7,
                          "beats_flat": amplitude["mae"] < flat["mae"] and amplitude["ssim"] > flat["ssim"]}),
              flush=True)

if __name__ == "__main__":
    main()
