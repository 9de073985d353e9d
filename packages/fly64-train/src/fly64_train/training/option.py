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



def devices(text: str) -> int | str:
    """argparse type for Lightning's ``devices``: a device count or a word such as ``auto``."""
    return int(text) if text.isdigit() else text


def time_or_off(text: str) -> str | None:
    """argparse type: a ``DD:HH:MM:SS`` wall-clock cap, or ``off`` for none."""
    if text.strip().lower() in ("off", "none"):
        return None
    parts = text.split(":")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected DD:HH:MM:SS or off, got {text!r}")
    return text
