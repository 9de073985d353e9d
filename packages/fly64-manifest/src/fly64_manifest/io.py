"""Strict JSON reading, atomic writing and file hashing: the bottom of the package.

It imports only :mod:`fly64_manifest.errors` and :mod:`fly64_manifest.safe_paths`;
writing a *validated* document (:func:`fly64_manifest.schema.write_json`) sits above
the schemas, so no module below reaches back up.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from fly64_manifest.errors import ManifestError
from fly64_manifest.safe_paths import ensure_dir

__all__ = ["MAX_JSON_DEPTH", "ManifestError", "atomic_write", "json_depth", "parse_json", "read_json",
           "sha256_file"]


#: Deepest nesting a study document may have. Our manifests are under ten levels deep;
#: the limit sits far below the interpreter's recursion limit so that every recursive
#: consumer (schema validation, freezing into models) is safe on whatever parses.
MAX_JSON_DEPTH = 64


def parse_json(text: str | bytes, source: str) -> Any:
    """Parse JSON ``text``; raise :class:`ManifestError` naming ``source`` if that fails.

    The one JSON parser of the pipeline: it turns every failure a hostile text can
    cause (syntax, recursion, invalid UTF-8) into one line, and refuses documents
    nested deeper than :data:`MAX_JSON_DEPTH`, the non-standard constants ``NaN``,
    ``Infinity`` and ``-Infinity`` (a non-finite metric must never pass for a
    score), numbers too large for a float (``1e400``) and duplicate keys (which
    copy would a reader believe?).
    """
    try:
        doc = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                         object_pairs_hook=_unique_keys)
    except _StrictJSONError as exc:
        raise ManifestError(f"{source}: not valid JSON ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ManifestError(f"{source}: JSON nested too deeply (limit {MAX_JSON_DEPTH} levels)") from None
    except UnicodeDecodeError:
        raise ManifestError(f"{source}: not valid JSON (not UTF-8 text)") from None
    except ValueError as exc:  # e.g. an integer literal past the interpreter's digit limit
        raise ManifestError(f"{source}: not valid JSON ({' '.join(str(exc).split())[:120]})") from None
    depth = json_depth(doc)
    if depth > MAX_JSON_DEPTH:
        raise ManifestError(f"{source}: JSON nested too deeply ({depth} levels, limit {MAX_JSON_DEPTH})")
    return doc


class _StrictJSONError(Exception):
    """A construct the stdlib accepts but strict JSON does not (raised from the parser's hooks)."""


def _refuse_constant(name: str) -> Any:
    raise _StrictJSONError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _StrictJSONError(f"number {text[:40]} is out of range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise _StrictJSONError(f"duplicate key {key[:60]!r}")
        doc[key] = value
    return doc


def json_depth(doc: Any) -> int:
    """Nesting depth of a parsed document (a scalar is 0), computed without recursion."""
    deepest = 0
    stack = [(doc, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return deepest


def read_json(path: str | os.PathLike) -> Any:
    """Parse the JSON file at ``path``; raise :class:`ManifestError` naming it if that fails."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"{path}: file not found") from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    return parse_json(raw, str(path))


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", *,
                 root: str | os.PathLike | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    A reader never sees half a file, and on any failure the temporary file is
    removed and the previous version of ``path`` (if any) stays untouched. An
    ``OSError`` that names no file (a full disk) is re-raised naming ``path``.
    The rename replaces a symbolic link at ``path`` itself, never its target.
    With ``root``, the folder written into must lie inside ``root`` with no
    link below it (:func:`fly64_manifest.safe_paths.ensure_dir`).
    """
    path = Path(path)
    if root is not None:
        ensure_dir(path.parent, root)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is not None:
            raise
        # A write or fsync error (ENOSPC, EIO) names no file: name the one being written.
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _default_mode() -> int:
    """Permissions a plain ``open()`` would give (mkstemp's are owner-only)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> tuple[str, int]:
    """Return ``(sha256 hex digest, size in bytes)`` of a file, read in chunks.

    Bundles and NPZ files can be large; reading in fixed chunks keeps memory flat.
    """
    digest = hashlib.sha256()
    size = 0
    with Path(path).open("rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
