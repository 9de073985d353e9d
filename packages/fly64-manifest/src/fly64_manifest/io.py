"""Atomic JSON reading and writing."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


class ManifestError(ValueError):
    """A JSON artifact is missing, unreadable or does not match its schema."""


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        with path.open("r", encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise ManifestError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def write_json(path: str | os.PathLike, obj: Any, kind: str | None = None) -> Path:
    """Validate ``obj`` against schema ``kind`` (if given), then write it atomically.

    The document goes to a temporary file in the destination folder, is flushed
    to disk, and replaces ``path`` by rename, so a reader never sees half a file
    and a failure leaves the previous version in place.
    """
    from fly64_manifest.schema import validate

    path = Path(path)
    if kind is not None:
        validate(obj, kind, source=str(path))
    text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
