"""Load the packaged JSON Schemas and validate documents against them."""

from __future__ import annotations

import json
import os
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from fly64_manifest.io import ManifestError, read_json

_SUFFIX = ".schema.json"


def _discover_kinds() -> dict[str, str]:
    folder = resources.files("fly64_manifest").joinpath("schemas")
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(_SUFFIX))
    return {name[: -len(_SUFFIX)]: name for name in names}


#: Artifact kind -> schema file name; a kind is ``schemas/<kind>.schema.json``.
KINDS: dict[str, str] = _discover_kinds()


@cache
def load_schema(kind: str) -> dict[str, Any]:
    if kind not in KINDS:
        raise ManifestError(f"unknown artifact kind {kind!r}; known: {sorted(KINDS)}")
    text = resources.files("fly64_manifest").joinpath("schemas", KINDS[kind]).read_text("utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return schema


def validate(doc: Any, kind: str, source: str | None = None) -> Any:
    """Validate a document (or the JSON file at a path) against schema ``kind``.

    Returns the document. Raises :class:`ManifestError` with a one-line message
    naming the source, the location inside the document and the problem.
    """
    if isinstance(doc, (str, os.PathLike)):
        source = str(doc)
        doc = read_json(Path(doc))
    validator = Draft202012Validator(load_schema(kind))
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "<root>"
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ManifestError(f"{source or '<document>'}: {kind} invalid at {where}: {err.message}{more}")
    return doc
