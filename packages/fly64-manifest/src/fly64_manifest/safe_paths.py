"""The one safe-path writer: every file the pipeline writes stays inside its output root.

A study folder lives on a shared file system, where a colleague or a stale link can
plant a symbolic link anywhere below a root. Writing through such a link would
truncate, append to or delete something the study does not own. The rules:

* The **root** itself may be a link (a study whose phase folders point at scratch
  storage is legitimate); it is resolved once.
* Every **folder below the root** that the pipeline writes into, creates or deletes
  must be a real folder: a symbolic link there, or a path that resolves (``..``)
  outside the root, is refused with one :class:`UnsafePathError` line naming it.
* **Files** are either replaced by rename (:func:`fly64_manifest.io.atomic_write`:
  a link at the file's name is replaced, its target untouched), or opened in place
  with ``O_NOFOLLOW`` (:func:`open_append`, :func:`open_lock`): a link there is
  refused. Lock files are never truncated.

Checks are made on the path at the moment of the call; a hostile writer racing the
pipeline inside the same folder is out of scope (see docs/decisions.md, trust model).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from fly64_manifest.errors import ManifestError


class UnsafePathError(ManifestError):
    """A path the pipeline would write, create or delete is a link or lies outside its root."""


def inside_root(path: str | os.PathLike, root: str | os.PathLike, *, what: str = "output") -> Path:
    """Check that ``path`` lies inside ``root`` with no link between them; return it absolute.

    ``path`` may be relative to ``root`` or absolute. Every existing component
    from ``root`` down to ``path`` itself (included) must be a real folder or
    file, not a symbolic link; missing components are fine (they will be
    created by :func:`ensure_dir`). ``root`` itself may be a link.

    Raises
    ------
    UnsafePathError
        ``"<path>: <what> is a symbolic link ..."`` or ``"... lies outside <root>"``.
    """
    root_abs = Path(os.path.abspath(root))
    candidate = Path(path)
    full = Path(os.path.normpath(candidate if candidate.is_absolute() else root_abs / candidate))
    if not candidate.is_absolute():
        # A relative path spelled through a relative root (``study/e/job`` below ``study/e``: what
        # ``root / name`` gives) is relative to the working folder, as every other path argument.
        from_cwd = Path(os.path.normpath(os.path.abspath(candidate)))
        if from_cwd.is_relative_to(root_abs) and not Path(root).is_absolute():
            full = from_cwd
    try:
        rel = full.relative_to(root_abs)
    except ValueError:
        # Also accept a path spelled through the root's resolved form.
        real_root = Path(os.path.realpath(root_abs))
        try:
            rel = full.relative_to(real_root)
        except ValueError:
            raise UnsafePathError(f"{path}: {what} lies outside its root {root}") from None
        root_abs = real_root
    current = root_abs
    for part in rel.parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            break  # nothing below a missing component can be a link yet
        except OSError as exc:
            raise UnsafePathError(f"{current}: {what} cannot be checked ({exc.strerror})") from None
        if stat.S_ISLNK(mode):
            raise UnsafePathError(f"{current}: {what} is a symbolic link inside {root}; "
                                  "refusing to write through it (remove the link)")
    return full


def ensure_dir(path: str | os.PathLike, root: str | os.PathLike, *, what: str = "output folder") -> Path:
    """Create folder ``path`` below ``root`` (and its parents) after :func:`inside_root`; return it.

    An existing component that is a file, not a folder, is refused in one line too.
    ``root`` itself is created if missing (it may be a link to an existing folder).
    """
    full = inside_root(path, root, what=what)
    Path(root).mkdir(parents=True, exist_ok=True)
    try:
        full.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UnsafePathError(f"{full}: {what} exists and is not a folder") from None
    except NotADirectoryError:
        raise UnsafePathError(f"{full}: a component of this {what} is a file, not a folder") from None
    # A link planted between the check and the mkdir would show here.
    return inside_root(full, root, what=what)


def remove_tree(path: str | os.PathLike, root: str | os.PathLike, *, what: str = "folder") -> None:
    """Delete folder ``path`` below ``root``; refuse a link or a path outside ``root``.

    ``shutil.rmtree`` does not follow links below the folder (it unlinks them),
    so only the folder and its chain up to the root need checking. A missing
    folder is nothing to delete.
    """
    full = inside_root(path, root, what=what)
    if full == Path(os.path.abspath(root)):
        raise UnsafePathError(f"{full}: refusing to delete the root itself")
    if os.path.lexists(full):
        shutil.rmtree(full)


def _open_nofollow(path: str | os.PathLike, flags: int, what: str) -> int:
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(f"{path}: {what} is a symbolic link; refusing to write through it "
                                  "(remove the link)") from None
        raise


def open_append(path: str | os.PathLike, *, what: str = "log file") -> IO[str]:
    """Open text file ``path`` for appending without following a link at its name (created if missing)."""
    fd = _open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, what)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafePathError(f"{path}: {what} is not a regular file")
    return os.fdopen(fd, "a", encoding="utf-8")


def open_lock(path: str | os.PathLike, *, what: str = "lock file") -> int:
    """File descriptor of lock file ``path``: created if missing, never truncated, never through a link."""
    fd = _open_nofollow(path, os.O_RDWR | os.O_CREAT, what)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafePathError(f"{path}: {what} is not a regular file")
    return fd


@contextlib.contextmanager
def locked(path: str | os.PathLike, *, blocking: bool = True, busy: str | None = None,
           what: str = "lock file") -> Iterator[int]:
    """Hold an exclusive ``flock`` on lock file ``path`` (see :func:`open_lock`) for the block.

    With ``blocking=False`` a lock held by another process raises
    ``RuntimeError(busy)`` at once instead of waiting.
    """
    fd = open_lock(path, what=what)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            raise RuntimeError(busy or f"{path}: locked by another process") from None
        yield fd
    finally:
        os.close(fd)  # closing drops the lock


def same_or_inside(path: str | os.PathLike, other: str | os.PathLike) -> bool:
    """True when ``path`` resolves to ``other`` or to a folder below it (links followed)."""
    a, b = Path(os.path.realpath(path)), Path(os.path.realpath(other))
    return a == b or b in a.parents


def refuse_output_in_input(output: str | os.PathLike, inputs: dict[str, str | os.PathLike],
                           *, output_flag: str) -> None:
    """Refuse an output root that equals or lies inside another phase's input root.

    Writing one phase into another's root lets the second command delete or
    shadow the first one's files (``fly64-data generate`` retires whole dose
    folders). ``inputs`` maps each input flag to its root.

    Raises
    ------
    UnsafePathError
        ``"<output_flag> <output>: ... <input flag> <input>; use a separate folder"``.
    """
    for flag, root in inputs.items():
        if root is None:
            continue
        if same_or_inside(output, root):
            raise UnsafePathError(f"{output_flag} {output}: is or lies inside the input root "
                                  f"{flag} {root}; write each phase to its own folder")


#: The manifest that marks each phase's root (Phase C data, Phase D views, Phase E artifacts).
PHASE_MANIFESTS = {"run_manifest.json": "Phase C data", "overlap_manifest.json": "Phase D overlap views",
                   "training_manifest.json": "Phase E training artifacts"}


def refuse_foreign_root(output: str | os.PathLike, own_manifest: str, *, output_flag: str) -> None:
    """Refuse an output root that already holds another phase's manifest (it is that phase's root).

    Raises
    ------
    UnsafePathError
        ``"<output_flag> <output>: holds <manifest> (<phase>); write each phase to its own folder"``.
    """
    for name, phase in PHASE_MANIFESTS.items():
        if name != own_manifest and os.path.lexists(Path(output) / name):
            raise UnsafePathError(f"{output_flag} {output}: holds {name} ({phase}); "
                                  "write each phase to its own folder")
