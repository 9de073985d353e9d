"""Where the local Dask cluster's workers run: how many, on which GPU, with how many threads.

Pure functions of the node (GPUs, cores, memory) and the ``--workers`` setting, so they are tested
without starting a cluster; :mod:`fly64_train.studies.dask_executor` starts the workers they place.
GPUs are counted without importing torch (``CUDA_VISIBLE_DEVICES`` or ``nvidia-smi -L``), so CUDA is
first initialised inside a worker that already sees only its own GPU.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fly64_train.studies.executor_config import ExecutorConfig

#: ``--workers auto``: as many local workers as the node uses well (see :func:`auto_workers`).
AUTO = "auto"
#: Jobs that share one GPU under ``--workers auto``. One study job (a small CNN, batches of 16
#: patterns) keeps an H200 about 2 % busy (issue #13), so a few concurrent jobs per GPU use it
#: better; 3 keeps each job's memory (a dose's patterns and the model, well under 10 GB) and the
#: worker's CPU threads for data loading comfortably within one node.
JOBS_PER_GPU = 3
#: Local workers a node may run per core: a few more than cores still helps while jobs read data
#: (the 2-core tests run 2 to 3), but hundreds only queue for the cores and multiply the memory.
WORKERS_PER_CORE = 4
#: Memory one local worker is given room for: a Dask worker process with torch imported takes about
#: 0.4 GB and a job's patterns and model up to about 1 GB more at N = 128 (chosen, with margin).
WORKER_MEMORY_BYTES = 2 << 30
#: Environment variables that size a worker's BLAS/OpenMP (and hence torch's intra-op) thread pool.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def detect_gpus() -> tuple[str, ...]:
    """GPU ids visible to this process, without initialising CUDA.

    ``CUDA_VISIBLE_DEVICES`` wins when set (``""`` or ``-1`` mean none);
    otherwise one id per line of ``nvidia-smi -L``; none without the tool.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = tuple(v.strip() for v in visible.split(",") if v.strip())
        return () if not ids or ids[0] == "-1" else ids
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(str(i) for i, line in enumerate(listing.splitlines()) if line.startswith("GPU "))


@dataclass(frozen=True)
class WorkerPlacement:
    """Where one local worker runs and how many threads it may use.

    Attributes
    ----------
    name : str
        The Dask worker name, ``worker-<i>``.
    gpu : str, optional
        The GPU id it sees (as ``CUDA_VISIBLE_DEVICES``); ``None`` on a CPU-only node.
    threads : int
        BLAS/OpenMP (and torch intra-op) threads: its share of the cores.
    """

    name: str
    gpu: str | None
    threads: int

    @property
    def env(self) -> dict[str, str]:
        env = dict.fromkeys(THREAD_ENV, str(self.threads))
        if self.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.gpu
        return env

    @property
    def resources(self) -> dict[str, int] | None:
        """One ``GPU`` slot per worker: a job's task asks for one, so it runs only where a GPU is."""
        return None if self.gpu is None else {"GPU": 1}


def auto_workers(n_gpus: int, jobs_per_gpu: int = JOBS_PER_GPU) -> int:
    """``--workers auto``: ``jobs_per_gpu`` workers per GPU; 1 on a CPU-only node.

    On CPUs one training already uses every core it is given, and two trainings on
    2 cores took longer together than one after the other (docs/study.md), so a
    CPU node gets one worker.
    """
    return n_gpus * jobs_per_gpu if n_gpus else 1


def node_worker_cap(cores: int, memory_bytes: int | None = None) -> int:
    """Most local workers a node of ``cores`` cores and ``memory_bytes`` of memory runs (at least 1)."""
    cap = WORKERS_PER_CORE * cores
    if memory_bytes is not None:
        cap = min(cap, memory_bytes // WORKER_MEMORY_BYTES)
    return max(1, cap)


def place_workers(workers: int | str | None, gpus: Sequence[str], cores: int,
                  jobs_per_gpu: int = JOBS_PER_GPU, memory_bytes: int | None = None) -> list[WorkerPlacement]:
    """The local workers for ``workers`` (a count, ``"auto"`` or ``None`` = auto) on this node.

    Worker ``i`` sees GPU ``gpus[i % G]``, so fewer workers than GPUs get one GPU
    each and more share them evenly (at most ``jobs_per_gpu`` per GPU); each gets
    ``cores // workers`` threads, at least 1. A count beyond :func:`node_worker_cap` (cores, and
    ``memory_bytes`` when given) is refused; ``auto`` is clamped to it.
    """
    cap = node_worker_cap(cores, memory_bytes)
    if workers is None or workers == AUTO:
        n = min(auto_workers(len(gpus), jobs_per_gpu), cap)  # auto fits the node by construction
    else:
        n = int(workers)
    if gpus and n > len(gpus) * jobs_per_gpu:
        raise ValueError(f"{n} workers but {len(gpus)} GPU(s): at most {jobs_per_gpu} workers share one GPU")
    if n > cap:
        memory = f", {memory_bytes / 2**30:.0f} GiB memory at {WORKER_MEMORY_BYTES >> 30} GiB per worker" \
            if memory_bytes is not None else ""
        raise ValueError(f"--workers {n}: this node can run at most {cap} local workers ({cores} cores x "
                         f"{WORKERS_PER_CORE}{memory})")
    threads = max(1, cores // n)
    return [WorkerPlacement(f"worker-{i}", gpus[i % len(gpus)] if gpus else None, threads) for i in range(n)]


def worker_specs(config: ExecutorConfig) -> list[WorkerPlacement]:
    """The local cluster's workers for ``config`` on this node (GPUs detected unless given)."""
    gpus = detect_gpus() if config.gpus is None else config.gpus
    from fly64_data.npz_reader import physical_memory_bytes

    return place_workers(config.workers, gpus, config.cores or _usable_cores(), config.jobs_per_gpu,
                         memory_bytes=physical_memory_bytes())


def _usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
