"""Command-line conventions shared by every fly64 console script.

One-line usage errors (``<prog>: error: <message> (see --help)``, exit 2),
argument types for positive finite numbers, the :class:`Accumulate` action for
repeatable list options and :func:`error_line` for one-line runtime errors, so
that ``fly64-data``, ``fly64-overlap`` and ``fly64-train`` read and fail the same way.
"""

from __future__ import annotations

import argparse
import functools
import math
from collections.abc import Sequence
from typing import Any, NoReturn

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage dump) and exit with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


class CommandParser(OneLineParser):
    """The parser of a program with commands (and of each command): one-line usage errors that also list the
    commands and point to the program's ``--help`` (exit 2); no abbreviated flags.

    With abbreviations a misspelt flag (``--epoch``) can silently mean another one.
    """

    def __init__(self, *args: Any, program: str, commands: Sequence[str], **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.program, self.commands = program, tuple(commands)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (commands: {', '.join(self.commands)}; "
                              f"see {self.program} --help)\n")


def command_line(program: str, commands: Sequence[str], version: str,
                 **kwargs: Any) -> tuple[CommandParser, argparse._SubParsersAction]:
    """``program``'s parser (``--version`` prints ``version``; ``kwargs`` go to it) and the action its
    commands are added to (each a :class:`CommandParser` too)."""
    parser_class = functools.partial(CommandParser, program=program, commands=commands)
    parser = parser_class(prog=program, **kwargs)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands", parser_class=parser_class)
    return parser, sub


def positive_finite_float(text: str) -> float:
    """argparse type: a finite number > 0 (refuses ``inf``, ``nan``, ``1e400``, zero and negatives)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number: {text!r}")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _whole_number_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}: {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0 (a seed)."""
    return _whole_number_at_least(text, 0)


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    return _whole_number_at_least(text, 1)


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


class Accumulate(argparse.Action):
    """``nargs="+"`` list option whose repeats add up: ``--dose 1 --dose 2`` equals ``--dose 1 2``.

    The first use replaces the default rather than extending it (argparse's own
    ``"extend"`` would append to a non-empty default), and a value given twice
    counts once, in the order first given.
    """

    def __init__(self, option_strings: Sequence[str], dest: str, nargs: Any = "+", **kwargs: Any) -> None:
        if nargs != "+":
            raise ValueError(f"{'/'.join(option_strings)}: Accumulate needs nargs='+'")
        super().__init__(option_strings, dest, nargs=nargs, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        current = getattr(namespace, self.dest, None)
        if current is None or current is self.default:
            current = []
        setattr(namespace, self.dest, list(dict.fromkeys([*current, *values])))


def error_line(exc: BaseException) -> str:
    """One line for a runtime error: ``<file>: <reason>`` for an OS error naming a file, else its message."""
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    return " ".join(str(exc).split()) or type(exc).__name__
