"""How a job stops other than by finishing: a signal, or a deadline before anything was trained.

A job ends in one of four truthful states (docs/decisions.md, "Job end states"):
``success``, ``failed``, ``interrupted`` (resumable) or ``diverged``. This module holds
the two stops that are not errors of the job itself:

* :class:`JobInterrupted`: a scheduler or a user sent SIGINT, SIGTERM, SIGHUP or
  SIGUSR1 (Slurm's ``--signal``). :func:`interruptible` turns each into this
  exception in the main thread. It derives from ``BaseException``, not
  ``Exception``, so a job's ``except Exception`` (which records a *failure*) never
  swallows it, and not from ``KeyboardInterrupt``, which Lightning answers with
  ``sys.exit(1)``. The job keeps its last checkpoint and a rerun resumes it; the
  process exits ``128 + signal`` (130 for Ctrl-C).
* :class:`NothingTrained`: ``--max-time`` ran out before the first epoch finished, so
  there are no trained weights to export; the job is recorded as interrupted, and no
  bundle is written.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

#: The signals a job handles: Ctrl-C, a scheduler's kill warning, a closed terminal, Slurm's ``--signal``.
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1)


class JobInterrupted(BaseException):  # noqa: N818 - a stop, not an error; named for what happened
    """A handled signal arrived: stop now, keep the checkpoints, record the job as interrupted."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"interrupted by {self.signal_name}")

    @property
    def signal_name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    @property
    def exit_status(self) -> int:
        """The shell's convention: ``128 + signal number`` (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


class NothingTrained(RuntimeError):  # noqa: N818 - a stop, not an error
    """The time budget ran out before one epoch finished: nothing is exported, the job is interrupted."""


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise JobInterrupted(signum)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """While inside, each of :data:`HANDLED_SIGNALS` raises :class:`JobInterrupted` in the main thread.

    The previous handlers come back on exit. Outside the main thread (a Dask worker's task
    thread) signals cannot be handled and nothing changes: the worker's process owns them.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS}
    for sig in HANDLED_SIGNALS:
        signal.signal(sig, _raise_interrupted)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
