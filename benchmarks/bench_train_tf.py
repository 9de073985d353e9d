"""TensorFlow vs torch training throughput at the default model size (N = 128, gs1 and gs2).

Times optimisation steps (forward, Poisson NLL with the photon split, backward, Adam) of the
default PtychoPINN in each backend on the same synthetic batch, after warm-up steps (graph
tracing, allocator), with the same thread count. Data reading is left out: both backends read
through the same numpy readers. :func:`patterns_per_second` is what bench_train.py can fold in.

Usage::

    .venv/bin/python benchmarks/bench_train_tf.py [--threads 2] [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

N = 128
BATCH_PATTERNS = 16


def _batch(gridsize: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from fly64_data.sample import synthetic_probe

    c = gridsize**2
    groups = BATCH_PATTERNS // c
    rng = np.random.default_rng(0)
    diffraction = np.sqrt(rng.poisson(5.0, size=(groups, c, N, N))).astype(np.float32) / 10.0
    offsets = (rng.normal(size=(groups, c, 2)) * 10).astype(np.float32)
    return diffraction, offsets, np.arange(groups, dtype=np.int64), synthetic_probe(N)


def torch_step_time(gridsize: int, steps: int, threads: int) -> float:
    import torch

    from fly64_train.backends.torch.model import PtychoPINN
    from fly64_train.training.model_config import ModelConfig

    torch.set_num_threads(threads)
    diffraction, offsets, _, probe = _batch(gridsize)
    model = PtychoPINN(ModelConfig(patch_size=N, gridsize=gridsize), probe, 10.0).train()
    opt = torch.optim.Adam(model.cnn.parameters(), 1e-3)
    d, o = torch.from_numpy(diffraction), torch.from_numpy(offsets) if gridsize > 1 else None

    def step() -> None:
        opt.zero_grad()
        model.loss(d, o, 0.5).backward()
        opt.step()

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def tf_step_time(gridsize: int, steps: int, threads: int) -> float:
    import keras
    import tensorflow as tf

    import fly64_train.backends.tensorflow  # noqa: F401  (quiets TF before it loads)
    from fly64_train.backends.tensorflow.model import PtychoPINN
    from fly64_train.training.model_config import ModelConfig

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    diffraction, offsets, index, probe = _batch(gridsize)
    model = PtychoPINN(ModelConfig(patch_size=N, gridsize=gridsize), probe, 10.0, count_split=0.5)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    data = tf.data.Dataset.from_tensors((diffraction, offsets, index))
    model.fit(data.repeat(2), epochs=1, verbose=0)  # traces the train step
    start = time.perf_counter()
    model.fit(data.repeat(steps), epochs=1, verbose=0)
    return (time.perf_counter() - start) / steps


def patterns_per_second(backend: str, gridsize: int = 1, steps: int = 6, threads: int = 2) -> float:
    """Training patterns per second of the default model in ``backend`` ("torch" or "tensorflow")."""
    timer = torch_step_time if backend == "torch" else tf_step_time
    return BATCH_PATTERNS / timer(gridsize, steps, threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    rows = [{"backend": b, "gridsize": g,
             "patterns_per_s": round(patterns_per_second(b, g, args.steps, args.threads), 2)}
            for b in ("torch", "tensorflow") for g in (1, 2)]
    print(json.dumps({"threads": args.threads, "N": N, "batch_patterns": BATCH_PATTERNS, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
