"""Reconstruction benchmark: predict, stitch and score one test split at N = 128 (#13 target 3).

Makes the split with the real simulator (``fly64-data generate`` at one dose,
default N = 128 and scan: a 1,299-pattern test split), writes a bundle of an
untrained default PtychoPINN (timing does not depend on the weights), loads it
through the framework-free ``fly64_train.load_bundle`` and times the three
evaluation stages (``stitch_s`` is the model's own stitch, on its device, as evaluation runs it;
``numpy_stitch_s`` the host reference; ``score_s`` includes the flat-object floor, ``floor_s`` is that
floor alone). Prints one JSON line per gridsize.

Usage::

    .venv/bin/python benchmarks/bench_reconstruct.py [--device auto|cpu|cuda] [--threads 2]
        [--gridsize 1 2] [--workdir /tmp/bench_reconstruct] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def make_split(workdir: Path) -> Path:
    """The dose-1000 test split of a default Phase C run (reused when already there)."""
    from fly64_data.cli import main as data_main

    test = workdir / "phase_c" / "dose_1000" / "patched_test.npz"
    if not test.is_file():
        assert data_main(["generate", "--output-root", str(workdir / "phase_c"), "--dose", "1000"]) == 0
    return test


def make_bundle(workdir: Path, test: Path, gridsize: int) -> Path:
    """An untrained default model with the split's probe and intensity scale, as a real bundle."""
    from fly64_train.backends.torch.bundle import save_bundle
    from fly64_train.backends.torch.model import PtychoPINN
    from fly64_train.data.reader import open_dataset
    from fly64_train.training.model_config import ModelConfig

    info = open_dataset(test)
    torch.manual_seed(0)
    model = PtychoPINN(ModelConfig(patch_size=info.patch_size, gridsize=gridsize), info.probe, info.intensity_scale)
    path = workdir / f"gs{gridsize}" / "wts.h5.zip"
    save_bundle(model, path, config={})
    return path


def best_of(repeat: int, fn):
    """(fastest wall seconds, last result) of ``repeat`` calls."""
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gridsize", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_reconstruct"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device

    from fly64_data.design import get_study_design
    from fly64_train import load_bundle
    from fly64_train.data.reader import npz_members
    from fly64_train.evaluation.evaluate import EvaluationConfig, flat_floor, score_stitched
    from fly64_train.evaluation.predict import predict_patches
    from fly64_train.evaluation.stitch import stitch

    design = get_study_design()
    test = make_split(args.workdir)
    readers = npz_members(test)
    truth, probe = readers["objectGuess"].read_all(), readers["probeGuess"].read_all()
    for gridsize in args.gridsize:
        model = load_bundle(make_bundle(args.workdir, test, gridsize), device=device)
        predict_s, predicted = best_of(args.repeat, lambda m=model: predict_patches(
            m, test, neighbor_count=design.neighbor_count, grouping_seed=int(design.rng_seeds["grouping"]),
            batch_size=args.batch_size))
        weight = abs(probe).astype("float64") ** 2 * model.support()
        # The model's stitch (torch: on its device) is what evaluation runs; the numpy one for comparison.
        stitch_s, (image, summed) = best_of(args.repeat, lambda p=predicted, weight=weight, m=model: m.stitch(
            p.patches, p.ycoords, p.xcoords, truth.shape, weight))
        numpy_stitch_s, _ = best_of(args.repeat, lambda p=predicted, weight=weight: stitch(
            p.patches, p.ycoords, p.xcoords, truth.shape, weight))
        score_s, evaluation = best_of(args.repeat, lambda i=image, s=summed, weight=weight: score_stitched(
            i, s, truth, float(weight.max()), EvaluationConfig()))
        # The flat-object floor (context for the report, added after #13's baseline) is part of score_s;
        # timed on its own too, so the reconstruction's own alignment and metrics can be read apart.
        e = evaluation
        floor_s, _ = best_of(args.repeat, lambda e=e: flat_floor(e.amplitude_true, e.phase_true, e.covered,
                                                                 EvaluationConfig()))
        print(json.dumps({"device": device, "threads": args.threads, "gridsize": gridsize,
                          "patterns": int(predicted.patches.shape[0]), "N": int(predicted.patches.shape[-1]),
                          "region": list(evaluation.amplitude.shape), "predict_s": round(predict_s, 3),
                          "stitch_s": round(stitch_s, 3), "numpy_stitch_s": round(numpy_stitch_s, 3),
                          "score_s": round(score_s, 3), "floor_s": round(floor_s, 3),
                          "reconstruct_s": round(predict_s + stitch_s, 3)}), flush=True)


if __name__ == "__main__":
    main()
