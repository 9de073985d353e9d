"""Where the study's jobs run: in this process, or on Dask workers.

The runner hands an executor a list of picklable job items and a top-level
function ``fn(item) -> result`` and iterates ``(item, outcome)`` as each job
completes. ``outcome`` is ``fn``'s return value, or a :class:`JobLost` when no
result came back (the job's worker died more often than allowed).

``fn`` must catch its own exceptions and return a failed result: only a dead
worker may reach Dask's retry, so a job that fails for a reason of its own is
run once. The settings are :mod:`~fly64_train.studies.executor_config`, the Dask executor
:mod:`~fly64_train.studies.dask_executor`, worker placement :mod:`~fly64_train.studies.worker_placement`.
This module imports no torch: the client that submits the matrix
stays light, and a GPU is never initialised before the workers pin theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Generic, Protocol, TypeVar

from fly64_train.studies.executor_config import ExecutorConfig

if TYPE_CHECKING:
    from fly64_train.studies.dask_executor import DaskExecutor

Item = TypeVar("Item")
Result = TypeVar("Result")


class ExecutorError(RuntimeError):
    """The executor could not start or reach its cluster (nothing was run)."""


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


def open_executor(config: ExecutorConfig, out: IO[str] | None = None) -> LocalExecutor | DaskExecutor:
    """The executor ``config`` asks for, started (use it as a context manager)."""
    # Imported here: the Dask executor is built on this module's JobLost and ExecutorError.
    from fly64_train.studies.dask_executor import DaskExecutor

    config.check()
    return DaskExecutor(config, out) if config.kind == "dask" else LocalExecutor()
