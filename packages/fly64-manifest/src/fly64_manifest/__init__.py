"""Schemas and validation for the fly64 study's JSON artifacts."""

from fly64_manifest.io import ManifestError, atomic_write, read_json, write_json
from fly64_manifest.schema import KINDS, load_schema, validate

__version__ = "0.1.0"

__all__ = [
    "KINDS", "ManifestError", "atomic_write", "load_schema", "read_json", "validate", "write_json", "__version__",
]
