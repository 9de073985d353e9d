"""How and where the study's jobs run (``--executor``, ``--workers``, ``--scheduler``...), checked.

The settings and their contradictions, and the ``--scheduler-file`` reader (untrusted input); no
Dask import, so a run can be refused before anything is started or written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from fly64_train.studies.worker_placement import AUTO, JOBS_PER_GPU

KINDS = ("local", "dask")
#: Job starts before a dying worker makes it lost, when ``--max-attempts`` is not given.
DEFAULT_MAX_ATTEMPTS = 3
#: A scheduler file ``dask scheduler --scheduler-file`` writes is a few hundred bytes.
MAX_SCHEDULER_FILE_BYTES = 1 << 20


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
