"""The bundle's ``manifest.json`` (schema ``bundle_manifest`` of fly64-manifest): writing and checked reading.

Format 2.0 (current): weights in a format no unpickler reads (safetensors for
torch, Keras ``.weights.h5`` for TensorFlow) and ``size_bytes`` recorded for
every weight file, so a reader can refuse a member from its zip header alone.
Format 1.x (read only): torch state_dicts written with ``torch.save``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fly64_manifest import BACKENDS
from fly64_train.bundle.container import MANIFEST_NAME, BundleError, WeightFile

BUNDLE_NAME = "wts.h5.zip"
FORMAT = "fly64-pinn-bundle"
FORMAT_VERSION = "2.0"
SUPPORTED_MAJORS = ("1", "2")


@dataclass(frozen=True)
class BundleHeader:
    """What a bundle's manifest says about its model, beside the weight files."""

    backend: str
    """Framework that wrote the weights: ``torch`` or ``tensorflow`` (picks the loader)."""
    backend_version: str
    """That framework's version at writing time."""
    patch_size: int
    """N, side of a diffraction pattern and of an object patch."""
    gridsize: int
    """Patterns per group side (1 or 2)."""
    intensity_scale: float
    """The training data's recorded intensity scale."""
    model_config: dict[str, Any]
    """The model's architecture (``ModelConfig.to_dict()``)."""
    config: dict[str, Any] = field(default_factory=dict)
    """The training configuration (JSON), e.g. ``neighbor_count`` and ``grouping_seed`` for evaluation."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """Data paths and digests the model was trained from."""

    def check(self) -> None:
        """Refuse values the manifest schema would refuse, with the field named."""
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.patch_size < 2 or self.gridsize < 1:
            raise ValueError(f"patch_size >= 2 and gridsize >= 1 needed, got {self.patch_size}, {self.gridsize}")
        if not self.intensity_scale > 0:
            raise ValueError(f"intensity_scale must be positive, got {self.intensity_scale}")


def manifest_json(header: BundleHeader, files: list[WeightFile], producer_version: str) -> bytes:
    """The validated ``manifest.json`` bytes of a format-2.0 bundle (sorted keys: deterministic)."""
    from fly64_manifest import validate

    header.check()
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "backend": header.backend,
        "backend_version": header.backend_version,
        "producer": {"package": "fly64-train", "version": producer_version},
        "models": [wf.entry() for wf in files],
        "N": header.patch_size,
        "gridsize": header.gridsize,
        "intensity_scale": float(header.intensity_scale),
        "model_config": header.model_config,
        "config": header.config,
        "provenance": header.provenance,
    }
    validate(manifest, "bundle_manifest", source=MANIFEST_NAME)
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class ModelEntry:
    """One weight file the manifest lists."""

    name: str
    """The model part it holds (``diffraction_to_obj``, ``forward_model``)."""
    file: str
    """Its member name in the zip."""
    sha256: str
    """The hex digest its bytes must have."""
    size_bytes: int | None
    """Its declared size (format 2.0; ``None`` in format 1.x): a bigger member is refused unread."""


@dataclass(frozen=True)
class BundleManifest:
    """A bundle's schema-valid ``manifest.json``, typed. ``model_config`` and ``config`` stay JSON objects:
    they are untrusted until :func:`fly64_train.training.recorded.recorded_configs` checks every key."""

    format_version: str
    """``MAJOR.MINOR`` of the bundle format (1.x read only, 2.x current)."""
    backend: str
    """The framework that wrote the weights, as recorded (an old ``pytorch`` too: the seam reads it as torch)."""
    backend_version: str | None
    """That framework's version at writing time (absent in old bundles)."""
    models: tuple[ModelEntry, ...]
    """The weight files, in the manifest's order."""
    patch_size: Any
    """``N``, as recorded (checked against ``model_config`` before any model is built)."""
    gridsize: Any
    """As recorded (checked likewise)."""
    intensity_scale: Any
    """As recorded (checked positive and finite, then against the forward model's buffer)."""
    model_config: Any
    """The architecture (``ModelConfig.to_dict()``); absent in some format 1.x bundles."""
    config: dict[str, Any]
    """The training configuration as JSON (``neighbor_count``, ``grouping_seed``, ``count_split`` ...)."""
    provenance: dict[str, Any]
    """Data paths and digests the model was trained from (empty when not recorded)."""

    @property
    def major(self) -> int:
        """The major format version (1 or 2)."""
        return int(self.format_version.split(".")[0])

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> BundleManifest:
        """The typed view of a manifest that passed the ``bundle_manifest`` schema."""
        return cls(
            format_version=doc["format_version"], backend=doc["backend"], backend_version=doc.get("backend_version"),
            models=tuple(ModelEntry(m["name"], m["file"], m["sha256"], m.get("size_bytes")) for m in doc["models"]),
            patch_size=doc["N"], gridsize=doc["gridsize"], intensity_scale=doc["intensity_scale"],
            model_config=doc.get("model_config"), config=doc.get("config") or {},
            provenance=doc.get("provenance") or {},
        )


def parse_manifest(data: bytes, where: str) -> BundleManifest:
    """Decode and check a ``manifest.json``: JSON, a supported major version, then the schema."""
    from fly64_manifest import ManifestError, parse_json, validate

    try:
        manifest = parse_json(data, f"{where}: {MANIFEST_NAME}")
    except ManifestError as exc:
        raise BundleError(str(exc)) from None
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if not isinstance(version, str) or version.split(".")[0] not in SUPPORTED_MAJORS:
        raise BundleError(f"{where}: bundle format_version {version!r} is not supported "
                          f"(this fly64-train reads {', '.join(m + '.x' for m in SUPPORTED_MAJORS)})")
    try:
        validate(manifest, "bundle_manifest", source=MANIFEST_NAME)
    except ManifestError as exc:
        raise BundleError(f"{where}: {' '.join(str(exc).split())}") from None
    return BundleManifest.from_json(manifest)


def format_major(manifest: BundleManifest) -> int:
    """The manifest's major format version (1 or 2)."""
    return manifest.major
