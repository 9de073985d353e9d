"""The Dask executor: one task per job, on a local cluster of worker processes or a running scheduler.

Dask is an extra of fly64-train (``fly64-train[dask]``): ``distributed`` is imported inside the
functions that need it, so importing this module (and the runner) works on a torch-only install and
:class:`DaskExecutor` answers a missing Dask with one :class:`ExecutorError` line.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, Generic

from fly64_train.studies.executor import ExecutorError, Item, JobLost, Result
from fly64_train.studies.executor_config import DEFAULT_MAX_ATTEMPTS, ExecutorConfig, scheduler_address
from fly64_train.studies.worker_placement import worker_specs


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


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())
