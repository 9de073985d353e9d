"""Publishing a finished report: its files move from a staging folder into the output, all or nothing."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def publish(staging: Path, output: Path, names: Sequence[str]) -> None:
    """Move the finished report files ``names`` from ``staging`` into ``output``.

    A new ``output`` is the staging folder renamed (one atomic step). An existing one may hold the
    user's own files, so the report's files are moved in one by one (each rename atomic), after
    every destination was checked to be replaceable: nothing is replaced unless all can be.
    """
    if not output.exists() and not output.is_symlink():
        os.rename(staging, output)
        return
    if output.is_symlink() or not output.is_dir():
        raise ValueError(f"{output}: not a folder (the report output must be one)")
    for name in names:
        target = output / name
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise ValueError(f"{target}: in the way of the report (not a regular file); nothing was replaced")
    for name in names:
        os.replace(staging / name, output / name)
