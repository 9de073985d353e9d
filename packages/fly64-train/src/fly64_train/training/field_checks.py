"""Type and range rules for one configuration field, used by every config class's ``check()``.

A config may come from the command line (already typed by argparse) or from a
file nobody vouches for (a bundle's ``manifest.json``): ``"8"``, ``1.5``,
``true``, ``1e400`` or ``NaN`` can sit where an integer or a finite number
belongs. Each rule raises one ValueError line that starts with the field's
name, so a caller can prefix where the field was read (``manifest.json:
model_config.base_width ...``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any


def integer(name: str, value: Any, low: int | None = None, high: int | None = None) -> None:
    """``value`` is a whole number (not a bool, not a float such as 8.0) in ``[low, high]``."""
    # bool is an int subclass and numpy integers are not ints: Integral admits the latter only.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    _in_range(name, int(value), low, high)


def real(name: str, value: Any, low: float | None = None, high: float | None = None, *,
         low_open: bool = False, high_open: bool = False) -> None:
    """``value`` is a finite number (an int is fine, a bool or a string is not) in its range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    value = float(value)
    if (low is not None and (value <= low if low_open else value < low)) or \
            (high is not None and (value >= high if high_open else value > high)):
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{name} must be in {lo}{'-inf' if low is None else low}, "
                         f"{'inf' if high is None else high}{hi}, got {value!r}")


def boolean(name: str, value: Any) -> None:
    """``value`` is True or False (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")


def text(name: str, value: Any, choices: Iterable[str] | None = None) -> None:
    """``value`` is a non-empty string, one of ``choices`` when given."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if choices is not None and value not in (options := tuple(choices)):
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")


def _in_range(name: str, value: int, low: int | None, high: int | None) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"<= {high}" if low is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bounds}, got {value}")
