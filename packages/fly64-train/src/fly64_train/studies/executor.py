"""Where the study's jobs run: in this process, or on Dask workers.

The runner hands an executor a list of picklable job items and a top-level
function ``fn(item) -> result`` and iterates ``(item, outcome)`` as each job
completes. ``outcome`` is ``fn``'s return value, or a :class:`JobLost` when no
result came back (the job's worker died more often than allowed).

``fn`` must catch its own exceptions and return a failed result: only a dead
worker may reach Dask's retry, so a job that fails for a reason of its own is
run once. This module imports no torch: the client that submits the matrix
stays light, and a GPU is never initialised before the workers pin theirs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Generic, Protocol, TypeVar

KINDS = ("local", "dask")
#: ``--workers auto``: as many local workers as the node uses well (see :func:`auto_workers`).
AUTO = "auto"
#: Jobs that share one GPU under ``--workers auto``. One study job (a small CNN, batches of 16
#: patterns) keeps an H200 about 2 % busy (issue #13), so a few concurrent jobs per GPU use it
#: better; 3 keeps each job's memory (a dose's patterns and the model, well under 10 GB) and the
#: worker's CPU threads for data loading comfortably within one node.
JOBS_PER_GPU = 3
#: Job starts before a dying worker makes it lost, when ``--max-attempts`` is not given.
DEFAULT_MAX_ATTEMPTS = 3
#: Local workers a node may run per core: a few more than cores still helps while jobs read data
#: (the 2-core tests run 2 to 3), but hundreds only queue for the cores and multiply the memory.
WORKERS_PER_CORE = 4
#: Memory one local worker is given room for: a Dask worker process with torch imported takes about
#: 0.4 GB and a job's patterns and model up to about 1 GB more at N = 128 (chosen, with margin).
WORKER_MEMORY_BYTES = 2 << 30
#: A scheduler file ``dask scheduler --scheduler-file`` writes is a few hundred bytes.
MAX_SCHEDULER_FILE_BYTES = 1 << 20
#: Environment variables that size a worker's BLAS/OpenMP (and hence torch's intra-op) thread pool.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

Item = TypeVar("Item")
Result = TypeVar("Result")


class ExecutorError(RuntimeError):
    """The executor could not start or reach its cluster (nothing was run)."""


@dataclass
class ExecutorConfig:
    """How and where the study's jobs run.

    Attributes
    ----------
    kind : str
        ``"local"``: one job after another in this process (the default).
        ``"dask"``: one Dask task per job, on a local cluster or ``scheduler``'s.
    workers : int or "auto", optional
        Worker processes of the local Dask cluster; ``None`` or ``"auto"``: as
        :func:`auto_workers` decides (GPUs x ``jobs_per_gpu``, else 1). Not
        allowed when ``scheduler`` or ``scheduler_file`` names a cluster.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:port``), e.g. one that
        dask-jobqueue's SLURMCluster/PBSCluster or ``dask scheduler`` started.
    scheduler_file : str, optional
        The JSON file ``dask scheduler --scheduler-file`` wrote; an alternative to ``scheduler``.
    max_attempts : int, optional
        Times a job is started before a dying worker makes it a :class:`JobLost`
        (Dask's ``allowed-failures`` is ``max_attempts - 1``); ``None``:
        :data:`DEFAULT_MAX_ATTEMPTS`. Only for the local cluster (a running scheduler
        keeps its own setting), so giving it with ``local`` or a scheduler is refused.
    gpus : tuple of str, optional
        GPU ids for the local cluster's workers, one each. Default: detected from
        ``CUDA_VISIBLE_DEVICES`` or ``nvidia-smi -L`` (see :func:`detect_gpus`).
    connect_timeout_s : float
        Seconds to wait for ``scheduler`` to answer before giving up.
    cores : int, optional
        CPU cores the local workers share (their BLAS/torch threads are
        ``cores // workers``, at least 1). Default: the cores this process may use.
    jobs_per_gpu : int
        Local workers (so concurrent jobs) that share one GPU, at most; ``auto``
        starts exactly this many per GPU.
    """

    kind: str = "local"
    workers: int | str | None = None
    scheduler: str | None = None
    scheduler_file: str | None = None
    max_attempts: int | None = None
    gpus: tuple[str, ...] | None = None
    connect_timeout_s: float = 5.0
    cores: int | None = None
    jobs_per_gpu: int = JOBS_PER_GPU

    def check(self) -> None:
        """Raise ``ValueError`` with a one-line message if the settings contradict each other."""
        if self.kind not in KINDS:
            raise ValueError(f"executor must be one of {', '.join(KINDS)}, got {self.kind!r}")
        remote = self.scheduler is not None or self.scheduler_file is not None
        if self.kind == "local" and (remote or self.workers is not None):
            raise ValueError("--workers, --scheduler and --scheduler-file need --executor dask")
        if self.scheduler is not None and self.scheduler_file is not None:
            raise ValueError("give --scheduler or --scheduler-file, not both")
        if remote and self.workers is not None:
            raise ValueError("--workers starts a local cluster; it cannot be combined with --scheduler")
        if isinstance(self.workers, str) and self.workers != AUTO:
            raise ValueError(f"workers must be a number or {AUTO!r}, got {self.workers!r}")
        if isinstance(self.workers, int) and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.jobs_per_gpu < 1:
            raise ValueError(f"jobs_per_gpu must be >= 1, got {self.jobs_per_gpu}")
        if self.max_attempts is not None:
            # Refused like --workers: a flag that would be silently ignored is a usage error.
            if self.kind == "local":
                raise ValueError("--max-attempts needs --executor dask (a local run starts each job once)")
            if remote:
                raise ValueError("--max-attempts applies to the local Dask cluster; a running scheduler keeps "
                                 "its own allowed-failures setting")
            if self.max_attempts < 1:
                raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.connect_timeout_s <= 0:
            raise ValueError(f"connect_timeout_s must be > 0, got {self.connect_timeout_s}")
        if self.cores is not None and self.cores < 1:
            raise ValueError(f"cores must be >= 1, got {self.cores}")
        if self.gpus and isinstance(self.workers, int) and self.workers > len(self.gpus) * self.jobs_per_gpu:
            raise ValueError(f"{self.workers} workers but {len(self.gpus)} GPU(s): at most {self.jobs_per_gpu} "
                             "workers share one GPU")


def scheduler_address(path: str | os.PathLike) -> str:
    """The address in a ``dask scheduler --scheduler-file`` file, checked as untrusted input.

    The file must be a small regular file (a FIFO or a device would block the read, so the mode is
    checked before opening, and again on the opened descriptor), strict JSON, and an object with a
    non-empty string ``address``. Dask never reads the file itself: the client is given the address.

    Raises ValueError: one line naming the file.
    """
    import stat

    from fly64_manifest import ManifestError, parse_json

    where = f"--scheduler-file {os.fspath(path)}"
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ValueError(f"{where}: not a regular file")
        # O_NONBLOCK: if the path was swapped for a FIFO after the check, opening it still returns.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ValueError(f"{where}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{where}: not a regular file")
        if info.st_size > MAX_SCHEDULER_FILE_BYTES:
            raise ValueError(f"{where}: {info.st_size} bytes, not a scheduler file (at most "
                             f"{MAX_SCHEDULER_FILE_BYTES})")
        data = os.read(fd, MAX_SCHEDULER_FILE_BYTES + 1)
    finally:
        os.close(fd)
    try:
        doc = parse_json(data, where)
    except ManifestError as exc:
        raise ValueError(str(exc)) from None
    address = doc.get("address") if isinstance(doc, dict) else None
    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"{where}: holds no scheduler address (a JSON object with a string \"address\", as "
                         f"`dask scheduler --scheduler-file` writes; got {_describe(doc)})")
    return address


def _describe(doc: Any) -> str:
    if isinstance(doc, dict):
        return f"address {doc['address']!r}" if "address" in doc else "an object without \"address\""
    return f"a JSON {type(doc).__name__}"


@dataclass(frozen=True)
class JobLost:
    """No result came back for a job: its worker died on every allowed attempt.

    Attributes
    ----------
    label : str
        The job's label (its Dask key without the run token).
    attempts : int
        Times the job was started on a worker that then died.
    reason : str
        One line: what Dask reported.
    """

    label: str
    attempts: int
    reason: str


class Executor(Protocol[Item, Result]):
    """What the runner needs from any executor."""

    def run(self, fn: Callable[[Item], Result], items: Sequence[Item],
            label: Callable[[Item], str]) -> Iterator[tuple[Item, Result | JobLost]]:
        """Start running ``fn`` on every item; the iterator yields ``(item, outcome)`` as each finishes."""
        ...

    def close(self) -> None:
        """Release workers and connections."""
        ...


class LocalExecutor(Generic[Item, Result]):
    """Today's behaviour: the jobs run here, one after another, in the order given."""

    def run(self, fn: Callable[[Item], Result], items: Sequence[Item],
            label: Callable[[Item], str]) -> Iterator[tuple[Item, Result | JobLost]]:
        for item in items:
            yield item, fn(item)

    def close(self) -> None:
        pass

    def __enter__(self) -> LocalExecutor[Item, Result]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DaskExecutor(Generic[Item, Result]):
    """One Dask task per job, on a local cluster of worker processes or on a running scheduler.

    Opening it starts (or connects to) the cluster, so a bad ``--scheduler``
    fails before the runner writes anything.
    """

    def __init__(self, config: ExecutorConfig, out: IO[str] | None = None) -> None:
        try:
            from distributed import Client
        except ImportError as exc:  # Dask is an extra of fly64-train: a torch-only install runs in process
            raise ExecutorError(f"--executor dask needs Dask, which is not installed ({exc.name or exc}); "
                                "install fly64-train[dask]") from None

        config.check()
        self.config = config
        self._token = uuid.uuid4().hex[:8]
        self._cluster = None
        if config.scheduler is not None or config.scheduler_file is not None:
            where = config.scheduler or config.scheduler_file
            try:
                address = config.scheduler or scheduler_address(config.scheduler_file)
            except ValueError as exc:
                raise ExecutorError(str(exc)) from None
            self.client = _connect(Client, address, config.connect_timeout_s, where)
        else:
            self._cluster = start_local_cluster(config)
            try:
                self.client = Client(self._cluster, set_as_default=False)
            except BaseException:
                self._cluster.close()
                raise
        if out is not None and self.dashboard_link:
            print(f"Dask dashboard: {self.dashboard_link}", file=out)

    @property
    def dashboard_link(self) -> str | None:
        """The scheduler's dashboard URL, or ``None`` when it serves none."""
        if "dashboard" not in self.client.scheduler_info().get("services", {}):
            return None
        return self.client.dashboard_link

    def _resources(self) -> dict[str, int] | None:
        """``{"GPU": 1}`` when the cluster's workers advertise GPUs (else a task would wait forever)."""
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {}).values()
        return {"GPU": 1} if any(w.get("resources", {}).get("GPU") for w in workers) else None

    def run(self, fn: Callable[[Item], Result], items: Sequence[Item],
            label: Callable[[Item], str]) -> Iterator[tuple[Item, Result | JobLost]]:
        """Submit every item now; the iterator yields each job as it completes."""
        resources = self._resources()
        # pure=False: a rerun must train again. The run token keeps two clients of
        # one scheduler from sharing a task because their jobs have the same label.
        futures = {self.client.submit(fn, item, key=f"{label(item)} [{self._token}]", pure=False,
                                      resources=resources): item for item in items}
        return self._completed(futures, label)

    def _completed(self, futures: dict[Any, Item],
                   label: Callable[[Item], str]) -> Iterator[tuple[Item, Result | JobLost]]:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        for future in as_completed(futures, loop=self.client.loop):
            item = futures.pop(future)
            try:
                outcome: Result | JobLost = future.result()
            except KilledWorker as exc:
                outcome = JobLost(label(item), exc.allowed_failures + 1, _one_line(exc))
            except Exception as exc:  # noqa: BLE001 - fn's contract broken, or the cluster failed: report, go on
                outcome = JobLost(label(item), 1, _one_line(exc))
            future.release()
            yield item, outcome

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> DaskExecutor[Item, Result]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_executor(config: ExecutorConfig, out: IO[str] | None = None) -> LocalExecutor | DaskExecutor:
    """The executor ``config`` asks for, started (use it as a context manager)."""
    config.check()
    return DaskExecutor(config, out) if config.kind == "dask" else LocalExecutor()


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


def _connect(client_class: Any, address: str, timeout_s: float, where: str) -> Any:
    """A client of the scheduler at ``address``, or an :class:`ExecutorError` naming ``where``.

    Dask bounds the TCP connect by ``timeout_s`` but not its handshake: a peer that accepts the
    connection and never answers (a wrong port on a busy node) would hang the run for ever. So the
    client is made in a daemon thread that is given ``2 * timeout_s + 1`` seconds and then abandoned.

    A Client whose constructor fails is half made: left to the garbage collector, its ``__del__``
    tries to close a connection that never opened, waits and prints a traceback. It is found in the
    failed constructor's frame and closed here, quietly, so the one-line error is all a user sees.
    """
    import threading

    box: dict[str, Any] = {}

    def make() -> None:
        try:
            box["client"] = client_class(address, timeout=timeout_s, set_as_default=False)
        except Exception as exc:  # noqa: BLE001 - Dask raises OSError, TimeoutError, ValueError, ... for a bad address
            box["error"] = exc

    thread = threading.Thread(target=make, name="fly64-dask-connect", daemon=True)
    thread.start()
    thread.join(2 * timeout_s + 1)
    if "client" in box:
        return box["client"]
    if "error" not in box:
        raise ExecutorError(f"{where}: no Dask scheduler answered within {2 * timeout_s + 1:g} s (something "
                            "accepted the connection but never answered as a Dask scheduler)")
    exc = box["error"]
    detail = " ".join(str(exc).split()) or type(exc).__name__
    tb = exc.__traceback__
    while tb is not None:
        half_made = tb.tb_frame.f_locals.get("self")
        if isinstance(half_made, client_class):
            _close_quietly(half_made)
            break
        tb = tb.tb_next
    raise ExecutorError(f"{where}: no Dask scheduler answered within {timeout_s:g} s ({detail})")


def _close_quietly(client: Any) -> None:
    import contextlib

    with contextlib.suppress(Exception):
        client.close(timeout=0.1)
    # Whatever close() managed, __del__ must not try again: it is what waits and prints.
    with contextlib.suppress(Exception):
        client.status = "closed"


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


def start_local_cluster(config: ExecutorConfig) -> Any:
    """A ``distributed.LocalCluster`` of one-thread worker processes, each with its own environment.

    LocalCluster gives every worker the same options, so the cluster starts
    empty and one spec per worker (its GPU, its thread counts) is added before
    scaling to them; the scheduler's ``allowed_failures`` comes from ``max_attempts``.
    """
    from distributed import LocalCluster

    specs = worker_specs(config)
    cluster = LocalCluster(n_workers=0, threads_per_worker=1, processes=True,
                           scheduler_kwargs={"allowed_failures": (config.max_attempts or DEFAULT_MAX_ATTEMPTS) - 1})
    try:
        for spec in specs:
            options = {**cluster.new_spec["options"], "name": spec.name, "env": spec.env}
            if spec.resources:
                options["resources"] = spec.resources
            cluster.worker_spec[spec.name] = {"cls": cluster.new_spec["cls"], "options": options}
        cluster.scale(len(specs))
        cluster.wait_for_workers(len(specs))
    except BaseException:
        cluster.close()
        raise
    return cluster


def _usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())
