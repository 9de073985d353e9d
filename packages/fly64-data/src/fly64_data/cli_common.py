"""Command-line conventions shared by every fly64 console script.

One-line usage errors (``<prog>: error: <message> (see --help)``, exit 2) and
argument types for positive numbers, so that ``fly64-data``, ``fly64-overlap``
and ``fly64-train`` read and fail the same way.
"""

from __future__ import annotations

import argparse
import math
from typing import NoReturn

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage dump) and exit with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


#: Default of options whose ``None`` means something ("off"): tells "not given" apart from it.
UNSET = object()


def fraction_or_off(text: str) -> float | None:
    """argparse type: a fraction strictly between 0 and 1, or ``0`` / ``off`` for None (feature off)."""
    if text.strip().lower() in ("0", "0.0", "off", "none"):
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), or 0/off, got {text!r}")
    return value


def positive_finite_float(text: str) -> float:
    """argparse type: a finite number > 0 (refuses ``nan``, ``inf``, 0 and negatives)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0: {text!r}")
    return value


class Extend(argparse.Action):
    """``nargs="+"`` option whose repetitions accumulate: ``--dose 1 --dose 2`` = ``--dose 1 2``.

    Use it with the default ``None``: the first appearance starts the list, so
    ``None`` still means "not given" (argparse's own ``extend`` action would
    extend a shared default list instead).
    """

    def __init__(self, option_strings: list[str], dest: str, nargs: str | int | None = "+", **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=nargs, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001 - argparse's signature
        current = getattr(namespace, self.dest, None)
        setattr(namespace, self.dest, [*(current or []), *values])
