"""Staging folders: where a run writes its outputs before moving them into place.

A run writes into ``<root>/.staging-*`` and renames the finished files into the
root, so a failure leaves the root as it was. A run that is killed cannot clean
up, so its staging folder (possibly a gigabyte) would stay for good. Each staging
folder therefore holds a lock file that its run keeps ``flock``-ed for its whole
life; the kernel drops the lock when the process dies, however it dies. The next
run into the same root removes every staging folder whose lock it can take (its
owner is dead) and leaves the others alone. The lock file also records the owner's
pid, for people looking at the folder.

Creating a folder and locking its file are two steps, so sweeping and creating are
serialised by a short lock on the root folder itself: a folder seen without a lock
file is never one whose owner is still setting it up.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from fly64_manifest import open_lock

PREFIX = ".staging-"
#: Name of the lock file inside a staging folder (it holds the owner's pid).
LOCK_NAME = "owner.lock"


class Staging:
    """Context manager: a fresh staging folder in ``root``, locked while the block runs.

    On entry it removes the staging folders of dead runs, creates its own and
    returns its path; on exit it removes its own folder (whatever is still in it).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.path: Path | None = None
        self._lock_fd: int | None = None

    def __enter__(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        with _RootLock(self.root):
            remove_stale(self.root)
            path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=self.root))
            try:
                fd = open_lock(path / LOCK_NAME, what="staging lock file")  # the one lock opener: no link
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.write(fd, f"{os.getpid()}\n".encode())
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                raise
        self.path, self._lock_fd = path, fd
        return path

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
        self.path, self._lock_fd = None, None


def remove_stale(root: Path) -> list[Path]:
    """Remove staging folders in ``root`` whose owner is dead; return the folders removed.

    Call with the root lock held (as :class:`Staging` does).
    """
    removed = []
    for folder in sorted(root.glob(f"{PREFIX}*")):
        if folder.is_dir() and not folder.is_symlink() and not _owner_alive(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _owner_alive(folder: Path) -> bool:
    """Whether a live process holds the folder's lock (a folder without a lock file has no owner)."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing also drops the lock if we took it
    return False


class _RootLock:
    """Exclusive ``flock`` on the root folder itself, held while sweeping and creating."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fd: int | None = None

    def __enter__(self) -> None:
        self.fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc_info: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
