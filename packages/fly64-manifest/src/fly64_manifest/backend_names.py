"""The training backends' names: one list, one spelling each, and the old spelling older files still hold.

Every artifact that records a backend (the training manifest, a bundle's manifest) and
fly64-train's backend seam, CLI and config use these names. Training manifests written
before fly64-train 0.4 spelled torch ``pytorch``; they are read as ``torch``.
"""

from __future__ import annotations

#: The backends, in the order the CLI lists them; the first is the default.
BACKENDS: tuple[str, ...] = ("torch", "tensorflow")
DEFAULT_BACKEND = BACKENDS[0]
#: Spellings earlier files used -> the name.
OLD_SPELLINGS: dict[str, str] = {"pytorch": "torch"}


def backend_name(spelling: str) -> str:
    """The backend name of ``spelling`` (an old spelling read as its name); ValueError for anything else."""
    name = OLD_SPELLINGS.get(spelling, spelling)
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {spelling!r} (known: {', '.join(BACKENDS)})")
    return name
