"""A job's log file: one logger per job, with the libraries it runs writing their own messages into it.

Framework-free, so a Phase E training job (Lightning's messages) and a Phase F reconstruction job
(pty-chi's) keep their logs the same way.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import IO

#: One line a record: time, level, logger, message.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def job_logger(stream: IO[str], name: str, libraries: Sequence[str] = ()) -> Iterator[logging.Logger]:
    """The logger ``name`` writing to ``stream`` while the block runs, the ``libraries``' loggers captured too.

    The logger does not propagate (a job's lines stay out of the console and out of other jobs' logs);
    at the end the handlers are removed and ``stream`` is closed.
    """
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    log = logging.getLogger(name)
    log.setLevel(logging.INFO)
    log.propagate = False
    captured = [log, *(logging.getLogger(library) for library in libraries)]
    for logger in captured:
        logger.addHandler(handler)
    try:
        yield log
    finally:
        for logger in captured:
            logger.removeHandler(handler)
        handler.close()
        stream.close()  # a StreamHandler leaves its stream open
