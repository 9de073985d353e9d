"""How a configuration field appears on the command line (declared on the field, read by the CLI).

Every field of :class:`~fly64_train.training.config.TrainConfig` and
:class:`~fly64_train.training.model_config.ModelConfig` carries one of these in
its ``metadata["option"]``: an :class:`Option` (a flag), ``NESTED`` (a config
dataclass whose own fields are flags) or an :class:`Internal` (not a user option,
with the reason). The CLI builds its training flags from them and refuses a
field that declares none, so a new field cannot be forgotten.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: ``kind`` values: a value flag, ``--x`` setting True, ``--no-x`` setting False, ``--x/--no-x``.
KINDS = ("value", "true", "false", "toggle")
#: ``scope`` values: shared by ``run`` and ``train-one``, or a job field only ``train-one`` takes
#: (``run`` fills it in per job from the plan).
SCOPES = ("shared", "job")


@dataclass(frozen=True)
class Option:
    """A command-line flag for one config field."""

    help: str
    """One-line help text."""
    type: Callable[[str], Any] | None = None
    """argparse type (converts and checks the text); ``None`` keeps the string."""
    aliases: tuple[str, ...] = ()
    """Extra spellings besides ``--kebab-case`` and ``--snake_case`` of the field name."""
    flag: str | None = None
    """The main spelling when it is not the field name (e.g. ``--train`` for ``train_path``)."""
    metavar: str | None = None
    """Placeholder in the usage line."""
    choices: tuple[Any, ...] | None = None
    """Allowed values, written once here."""
    kind: str = "value"
    """One of :data:`KINDS`."""
    scope: str = "shared"
    """One of :data:`SCOPES`."""
    required: bool = False
    """Whether ``train-one`` requires it (job fields only)."""

    def check(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Option.kind must be one of {KINDS}, got {self.kind!r}")
        if self.scope not in SCOPES:
            raise ValueError(f"Option.scope must be one of {SCOPES}, got {self.scope!r}")
        if self.required and self.scope != "job":
            raise ValueError("only job fields can be required")


@dataclass(frozen=True)
class Internal:
    """A field that is deliberately not a command-line option."""

    reason: str
    """Why (shown by the test that every field is accounted for)."""

    def check(self) -> None:
        if not self.reason:
            raise ValueError("an internal field needs a reason")


#: Marker for a field holding another config dataclass whose fields declare their own options.
NESTED = "nested"


def option(help: str, **kwargs: Any) -> dict[str, Option]:  # noqa: A002 - mirrors argparse's keyword
    """Field metadata declaring a flag: ``field(default=..., metadata=option("..."))``."""
    spec = Option(help, **kwargs)
    spec.check()
    return {"option": spec}


def internal(reason: str) -> dict[str, Internal]:
    """Field metadata declaring that the field has no flag, and why."""
    spec = Internal(reason)
    spec.check()
    return {"option": spec}



#: A whole number in ASCII digits: ``str.isdigit`` also says yes to "²" and "٣", which ``int`` then
#: reads or refuses in ways a user never meant.
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_MAX_TIME = re.compile(r"([0-9]{1,6}):([0-9]{1,6}):([0-9]{1,6}):([0-9]{1,6})", re.ASCII)
#: The longest ``max_time`` a job may ask for: a year (longer is a typo).
MAX_TIME_LIMIT_S = 366 * 24 * 3600
#: Devices one Lightning job may ask for.
MAX_DEVICES = 1024
#: Seeds are unsigned 32-bit: torch, numpy's legacy seeding and Lightning's ``seed_everything`` (which
#: silently swaps an out-of-range seed for a random one) all take that range.
MAX_SEED = 2**32 - 1


def whole_number(text: str, low: int, high: int) -> int:
    """argparse type core: a whole number in ASCII digits within ``[low, high]``."""
    if text[:1] == "-" and _DIGITS.fullmatch(text[1:]) and low >= 0:
        raise argparse.ArgumentTypeError(f"must be in [{low}, {high}], got {text!r}")
    if not _DIGITS.fullmatch(text):
        raise argparse.ArgumentTypeError(f"not a whole number (digits 0-9): {text!r}")
    if len(text.lstrip("0")) > len(str(high)):  # before int(): "9" * 10**6 must not cost a conversion
        raise argparse.ArgumentTypeError(f"must be in [{low}, {high}], got {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be in [{low}, {high}], got {text!r}")
    return value


def seed(text: str) -> int:
    """argparse type of a seed: a whole number in ``[0, 2**32 - 1]``."""
    return whole_number(text, 0, MAX_SEED)


def devices(text: str) -> int | str:
    """argparse type for Lightning's ``devices``: ``auto`` or a device count >= 1."""
    if text == "auto":
        return text
    try:
        return whole_number(text, 1, MAX_DEVICES)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected auto or a device count in [1, {MAX_DEVICES}], "
                                         f"got {text!r}") from None


def max_time_seconds(value: str | None) -> float | None:
    """``DD:HH:MM:SS`` (ASCII digits) as seconds; ``None``: no cap. Raises ValueError on another form."""
    if value is None:
        return None
    match = _MAX_TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"max_time must be DD:HH:MM:SS (digits 0-9), got {value!r}")
    days, hours, minutes, seconds = (int(p) for p in match.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def time_or_off(text: str) -> str | None:
    """argparse type: a ``DD:HH:MM:SS`` wall-clock cap above zero and at most a year, or ``off`` for none.

    Zero is refused like ``--max-epochs 0``: a job allowed no time would export an untrained model.
    """
    if text.strip().lower() in ("off", "none"):
        return None
    try:
        seconds = max_time_seconds(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected DD:HH:MM:SS (digits 0-9) or off, got {text!r}") from None
    if not seconds:
        raise argparse.ArgumentTypeError(f"must be more than zero (or off), got {text!r}")
    if seconds > MAX_TIME_LIMIT_S:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_TIME_LIMIT_S // 86400} days, got {text!r}")
    return text


def job_folder(text: str) -> str:
    """argparse type of ``--job-dir``: a folder, or a path where one can be made (not an existing file)."""
    from pathlib import Path

    path = Path(text)
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"not a folder path: {text!r}")
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder")
    return text


class FlagError(ValueError):
    """A flag's value that cannot work with the data the run found (e.g. ``--depth`` for this N).

    A usage error like argparse's own (exit 2), found after the data's headers were read and
    before anything was written."""

