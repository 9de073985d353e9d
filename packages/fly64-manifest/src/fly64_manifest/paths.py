"""Resolve recorded paths and refuse those that are absolute or escape their root.

The checks are lexical (``os.path.normpath``), not ``Path.resolve``: a study
whose phase folders are symlinks to scratch storage is legitimate, and what we
guard against is a *recorded* path that points somewhere the manifest does not own.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from fly64_manifest.errors import ManifestError


def is_absolute(recorded: str) -> bool:
    """True for a POSIX-absolute, Windows drive/UNC, or backslash-rooted path."""
    win = PureWindowsPath(recorded)
    return PurePosixPath(recorded).is_absolute() or bool(win.drive) or recorded.startswith("\\")


def is_within(path: Path, root: Path) -> bool:
    """True when normalised ``path`` is ``root`` or lies below it."""
    path_n, root_n = os.path.normpath(path), os.path.normpath(root)
    return path_n == root_n or path_n.startswith(root_n.rstrip(os.sep) + os.sep)


def path_problem(recorded: object, base: Path, root: Path) -> str | None:
    """Why ``recorded`` (relative to ``base``) is not an acceptable path inside ``root``; ``None`` if it is."""
    if not isinstance(recorded, str) or not recorded:
        return f"{recorded!r} is not a path"
    if is_absolute(recorded):
        return f"{recorded!r} is absolute; recorded paths must be relative"
    if not is_within(Path(os.path.normpath(base / recorded)), root):
        return f"{recorded!r} escapes {root}"
    return None


def resolve_inside(recorded: str, base: Path, root: Path, where: str) -> Path:
    """Absolute normalised path of ``recorded`` relative to ``base``, which must stay inside ``root``.

    Raises
    ------
    ManifestError
        ``"<where>: <problem>"`` when the path is absolute or escapes ``root``.
    """
    problem = path_problem(recorded, base, root)
    if problem is not None:
        raise ManifestError(f"{where}: {problem}")
    return Path(os.path.normpath(base / recorded))


def resolve_root(recorded: str, base: Path) -> Path:
    """A recorded root: absolute as written, else relative to ``base`` (``..`` allowed)."""
    if is_absolute(recorded):
        return Path(os.path.normpath(recorded))
    return Path(os.path.normpath(base / recorded))
