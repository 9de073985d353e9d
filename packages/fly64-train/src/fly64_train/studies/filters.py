"""The study's job filters on the command line: ``--dose``, ``--view``, ``--gridsize``, ``--seeds``.

Framework-free, so every study command spells and refuses them the same way:
``fly64-train run`` (Phase E) and ``fly64-iterative run`` (Phase F) both use these.
"""

from __future__ import annotations

import argparse
from typing import Any

from fly64_data.cli_common import Accumulate, positive_finite_float
from fly64_data.design import get_study_design
from fly64_train.studies.matrix import study_views


class GivenNumber(float):
    """A number from the command line that remembers how it was typed, so a refusal shows the user's
    text (``1000.0000000000001``), not a rounding of it (``1000``)."""

    text: str

    def __new__(cls, value: float, text: str | None = None) -> GivenNumber:  # text optional: pickle's copy
        number = super().__new__(cls, value)
        number.text = repr(float(value)) if text is None else text
        return number


def dose_type(text: str) -> GivenNumber:
    """argparse type of ``--dose``: a positive finite number, remembered as typed."""
    return GivenNumber(positive_finite_float(text), text)


class DistinctSeeds(Accumulate):
    """``--seeds``: accumulates like the filters, but a seed given twice is a usage error, not merged.

    A repeated seed would train the same replicate twice and count it twice in the mean.
    """

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        current = getattr(namespace, self.dest, None)
        given = [*(current if current is not None and current is not self.default else ()), *values]
        repeated = next((s for i, s in enumerate(given) if s in given[:i]), None)
        if repeated is not None:
            parser.error(f"{option_string} {repeated} is given more than once (each seed trains every cell once)")
        super().__call__(parser, namespace, values, option_string)


def add_filters(parser: argparse.ArgumentParser, verb: str = "") -> argparse._ArgumentGroup:
    """The ``filters`` group with ``--dose`` and ``--view`` (their values from the study design); a command adds
    its other filters to the group returned. ``verb`` completes their help: ``doses{verb}, from ...``."""
    design = get_study_design()
    filters = parser.add_argument_group("filters (AND-combined, repeatable; default: every job)")
    filters.add_argument("--dose", action=Accumulate, type=dose_type, metavar="D",
                         help=f"doses{verb}, from {' '.join(f'{d:g}' for d in design.dose_list)}")
    filters.add_argument("--view", action=Accumulate, metavar="VIEW",
                         help=f"views{verb}, from {' '.join(study_views(design))}")
    return filters


def check_filters(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage error (exit 2) for a dose, view or gridsize the study design does not have."""
    design = get_study_design()
    known_doses = {float(x) for x in design.dose_list}
    views = [*study_views(design), *(f"{v}_matched" for v in study_views(design))]
    for name, values, known, shown in (
        ("--dose", args.dose, known_doses, [f"{d:g}" for d in design.dose_list]),
        ("--view", args.view, set(views), views),
        ("--gridsize", args.gridsize, set(design.gridsizes), [str(g) for g in design.gridsizes]),
    ):
        unknown = [v for v in values or () if v not in known]
        if unknown:
            value = getattr(unknown[0], "text", None) or (f"{unknown[0]:g}" if isinstance(unknown[0], float)
                                                          else unknown[0])
            parser.error(f"{name} {value} is not in the study design ({', '.join(shown)})")
