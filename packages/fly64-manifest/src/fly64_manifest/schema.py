"""Load the packaged JSON Schemas, validate documents against them, read and write validated documents."""

from __future__ import annotations

import json
import os
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from fly64_manifest._version import __version__
from fly64_manifest.io import ManifestError, atomic_write, parse_json, read_json

_SUFFIX = ".schema.json"
# A schema's $id ends in "/<major>.<minor>.json"; that is the version it describes.
_ID_VERSION = re.compile(r"/(\d+)\.(\d+)(?:\.json)?$")
_DOC_VERSION = re.compile(r"^(\d+)\.(\d+)$")


def _discover_kinds() -> dict[str, str]:
    folder = resources.files("fly64_manifest").joinpath("schemas")
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(_SUFFIX))
    return {name[: -len(_SUFFIX)]: name for name in names}


#: Artifact kind -> schema file name; a kind is ``schemas/<kind>.schema.json``.
KINDS: dict[str, str] = _discover_kinds()


@cache
def load_schema(kind: str) -> dict[str, Any]:
    """Return the packaged JSON Schema of artifact ``kind`` (checked against draft 2020-12)."""
    if kind not in KINDS:
        raise ManifestError(f"unknown artifact kind {kind!r}; known: {sorted(KINDS)}")
    text = resources.files("fly64_manifest").joinpath("schemas", KINDS[kind]).read_text("utf-8")
    schema = parse_json(text, f"fly64_manifest schema {KINDS[kind]}")
    Draft202012Validator.check_schema(schema)
    return schema


def schema_version(kind: str) -> tuple[int, int] | None:
    """Return the ``(major, minor)`` version schema ``kind`` describes, from its ``$id``.

    ``None`` when the ``$id`` carries no version (then no version gate applies).
    """
    match = _ID_VERSION.search(str(load_schema(kind).get("$id", "")))
    return (int(match.group(1)), int(match.group(2))) if match else None


def check_version(doc: Any, kind: str, source: str | None = None) -> None:
    """Refuse a document whose ``schema_version`` has a major version this package does not know.

    A newer *minor* version is accepted: minors only add fields, and every schema
    here allows extra fields. A missing or malformed version is left to the schema.
    """
    known = schema_version(kind)
    if known is None or not isinstance(doc, dict) or not isinstance(doc.get("schema_version"), str):
        return
    match = _DOC_VERSION.match(doc["schema_version"])
    if match is None:
        return
    major = int(match.group(1))
    if major > known[0]:
        raise ManifestError(
            f"{source or '<document>'}: {kind} schema_version {doc['schema_version']} is newer than "
            f"fly64-manifest {__version__} understands (major {known[0]}); upgrade fly64-manifest"
        )
    if major < known[0]:
        raise ManifestError(
            f"{source or '<document>'}: {kind} schema_version {doc['schema_version']} is an old major "
            f"version this fly64-manifest no longer reads (expects {known[0]}.x)"
        )


def _describe(err: ValidationError) -> str:
    """One readable line for a validation error (jsonschema's ``not``/``oneOf`` texts dump whole schemas)."""
    if err.validator == "not":
        return f"{err.instance!r} must be a relative path with no leading '/', drive or '..' segment"
    if err.validator in ("oneOf", "anyOf") and err.context:
        # Report the branch that failed for a reason other than its type: that is the one the
        # writer meant (a string that is not a valid path, not "also not null").
        meaningful = [e for e in err.context if e.validator != "type"] or list(err.context)
        return _describe(min(meaningful, key=lambda e: len(e.relative_path)))
    if "then" in err.absolute_schema_path:
        # if/then rules tie fields to a status (a successful job must record its bundle).
        return f"{err.message} (required by the entry's status)"
    return err.message


def schema_problems(doc: Any, kind: str) -> list[str]:
    """Every schema violation of ``doc`` as ``"<location>: <problem>"`` lines, sorted by location."""
    validator = Draft202012Validator(load_schema(kind))
    errors = sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {_describe(e)}" for e in errors]


def validate(doc: Any, kind: str, source: str | None = None) -> Any:
    """Validate a document (or the JSON file at a path) against schema ``kind``.

    Returns the document. Raises :class:`ManifestError` with a one-line message
    naming the source, the location inside the document and the problem. A
    ``schema_version`` with an unknown major version is refused first, with a
    message saying so rather than a pattern mismatch.
    """
    if isinstance(doc, (str, os.PathLike)):
        source = str(doc)
        doc = read_json(Path(doc))
    check_version(doc, kind, source)
    problems = schema_problems(doc, kind)
    if problems:
        where, _, message = problems[0].partition(": ")
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ManifestError(f"{source or '<document>'}: {kind} invalid at {where}: {message}{more}")
    return doc


def read_checked(path: Path, kind: str) -> dict[str, Any]:
    """Read, version-gate and schema-validate the document at ``path``."""
    return validate(read_json(path), kind, source=str(path))


def write_json(path: str | os.PathLike, obj: Any, kind: str | None = None, *,
               root: str | os.PathLike | None = None) -> Path:
    """Validate ``obj`` against schema ``kind`` (if given), then write it atomically (inside ``root`` if given)."""
    path = Path(path)
    if kind is not None:
        validate(obj, kind, source=str(path))
    text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"
    with atomic_write(path, root=root) as fh:
        fh.write(text)
    return path
