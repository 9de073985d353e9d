"""The ``wts.h5.zip`` model bundle (SPEC §7).

A zip archive holding ``manifest.json`` (validated against the
``bundle_manifest`` schema of fly64-manifest) and, per model, a torch
``state_dict`` saved with ``torch.save`` and read back with
``torch.load(..., weights_only=True)``: tensors only, never pickled code.

Models in a torch bundle
    ``diffraction_to_obj``: the CNN (diffraction -> object patches).
    ``forward_model``: the fixed probe, support and intensity scale of the physics.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from fly64_data.contract import sha256_file
from fly64_train import __version__
from fly64_train.backends.torch.model import PtychoPINN
from fly64_train.training.model_config import ModelConfig

BUNDLE_NAME = "wts.h5.zip"
FORMAT = "fly64-pinn-bundle"
FORMAT_VERSION = "1.0"
SUPPORTED_MAJOR = "1"
MANIFEST_NAME = "manifest.json"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class BundleError(ValueError):
    """A bundle is unreadable, of another format version, or does not fit its model."""


def _state_parts(model: PtychoPINN) -> dict[str, dict[str, torch.Tensor]]:
    cnn = {k: v.detach().cpu().contiguous() for k, v in model.cnn.state_dict().items()}
    fwd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not k.startswith("cnn.")}
    return {"diffraction_to_obj": cnn, "forward_model": fwd}


def save_bundle(model: PtychoPINN, path: str | os.PathLike, config: dict[str, Any] | None = None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``model`` as a bundle, atomically, and describe the final bytes.

    Parameters
    ----------
    model : PtychoPINN
    path : path
        Destination, conventionally ``<job_dir>/wts.h5.zip``.
    config : dict, optional
        Training configuration recorded in the manifest (JSON-serialisable).
    extra : dict, optional
        Additional manifest fields under ``provenance`` (e.g. data paths and sha256).

    Returns
    -------
    dict
        ``path``, ``sha256`` (64 lowercase hex of the file as written) and ``size_bytes``.
    """
    from fly64_manifest import validate

    path = Path(path)
    members: dict[str, bytes] = {}
    models = []
    for name, state in _state_parts(model).items():
        buf = io.BytesIO()
        torch.save(state, buf)
        data = buf.getvalue()
        file = f"models/{name}.pt"
        members[file] = data
        models.append({"name": name, "file": file, "sha256": hashlib.sha256(data).hexdigest(),
                       "size_bytes": len(data), "n_tensors": len(state),
                       "n_parameters": int(sum(t.numel() for t in state.values()))})
    cfg = model.cfg
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "backend": "torch",
        "backend_version": torch.__version__.split("+")[0],
        "producer": {"package": "fly64-train", "version": __version__},
        "models": models,
        "N": cfg.patch_size,
        "gridsize": cfg.gridsize,
        "intensity_scale": float(model.intensity_scale),
        "model_config": cfg.to_dict(),
        "config": config or {},
        "provenance": extra or {},
    }
    validate(manifest, "bundle_manifest", source=f"{path}:{MANIFEST_NAME}")
    members = {MANIFEST_NAME: (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(), **members}

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for name, data in members.items():
                    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    zf.writestr(info, data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # Digest the bytes now on disk, not the in-memory members: that is what a reader verifies.
    return {"path": str(path), "sha256": sha256_file(path), "size_bytes": path.stat().st_size}


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The validated inner manifest of a bundle."""
    path = Path(path)
    with _open_zip(path) as zf:
        return _manifest(zf, path)


def _open_zip(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise BundleError(f"{path}: bundle not found")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"{path}: not a readable zip archive, truncated or corrupt ({exc})") from None
    bad = _first_bad_member(zf)
    if bad is not None:
        zf.close()
        raise BundleError(f"{path}: member {bad!r} is corrupt or truncated (CRC/read failure)")
    return zf


def _first_bad_member(zf: zipfile.ZipFile) -> str | None:
    try:
        return zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        return f"<archive: {exc}>"


def _manifest(zf: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    from fly64_manifest import ManifestError, validate

    if MANIFEST_NAME not in zf.namelist():
        raise BundleError(f"{path}: no {MANIFEST_NAME} inside the bundle")
    try:
        manifest = json.loads(zf.read(MANIFEST_NAME).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: {MANIFEST_NAME} is not valid JSON ({exc})") from None
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if not isinstance(version, str) or version.split(".")[0] != SUPPORTED_MAJOR:
        raise BundleError(f"{path}: bundle format_version {version!r} is not supported "
                          f"(this fly64-train reads {SUPPORTED_MAJOR}.x)")
    try:
        validate(manifest, "bundle_manifest", source=f"{path}:{MANIFEST_NAME}")
    except ManifestError as exc:
        raise BundleError(str(exc)) from None
    if manifest["backend"] != "torch":
        raise BundleError(f"{path}: backend {manifest['backend']!r} bundles cannot be loaded by the torch loader")
    return manifest


def load_bundle(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> PtychoPINN:
    """Load a bundle into a :class:`PtychoPINN` in eval mode, ready for inference.

    Raises
    ------
    BundleError
        If the zip is unreadable or truncated, the manifest is missing, invalid
        or of an unsupported format version, a weight file fails its checksum,
        or the weights do not fit the model the manifest describes.
    """
    path = Path(path)
    with _open_zip(path) as zf:
        manifest = _manifest(zf, path)
        states = {}
        for entry in manifest["models"]:
            try:
                data = zf.read(entry["file"])
            except KeyError:
                raise BundleError(f"{path}: model file {entry['file']!r} listed in the manifest is missing") from None
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise BundleError(f"{path}: model file {entry['file']!r} does not match its sha256 in the manifest")
            try:
                states[entry["name"]] = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
            except Exception as exc:  # torch raises several types for non-tensor or damaged payloads
                raise BundleError(f"{path}: cannot load {entry['file']!r} as plain tensors "
                                  f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    for needed in ("diffraction_to_obj", "forward_model"):
        if needed not in states:
            raise BundleError(f"{path}: manifest lists no {needed!r} model")
    try:
        cfg = ModelConfig.from_dict(manifest["model_config"], legacy=True)
        fwd = states["forward_model"]
        model = PtychoPINN(cfg, fwd["probe"], float(fwd["intensity_scale"]))
        model.cnn.load_state_dict(states["diffraction_to_obj"], strict=True)
        model.load_state_dict({**{f"cnn.{k}": v for k, v in states["diffraction_to_obj"].items()}, **fwd},
                              strict=True)
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3]) if first else type(exc).__name__
        raise BundleError(f"{path}: weights do not fit the model described by the manifest ({detail})") from None
    return model.to(map_location).eval()
