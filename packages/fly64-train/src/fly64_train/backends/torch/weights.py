"""Torch weights in a bundle: safetensors files (format 2.0), or ``torch.save`` files of format 1.x (read only).

Models in a torch bundle
    ``diffraction_to_obj``: the CNN (diffraction -> object patches).
    ``forward_model``: the fixed probe, support and intensity scale of the physics.

safetensors is a JSON header plus raw tensor bytes: no unpickler ever runs on a
format-2.0 bundle. Format 1.x files are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import os
from typing import Any

import torch

from fly64_train.backends.torch.device import inference_device
from fly64_train.backends.torch.loaded_model import TorchLoadedModel
from fly64_train.backends.torch.model import PtychoPINN
from fly64_train.bundle import BUNDLE_NAME, BundleError, WeightFile, format_major, write_model_bundle
from fly64_train.training.model_config import ModelConfig

__all__ = ["BUNDLE_NAME", "BundleError", "build_model", "load_model", "save_bundle", "weight_files"]

_MODELS = ("diffraction_to_obj", "forward_model")


def _state_parts(model: PtychoPINN) -> dict[str, dict[str, torch.Tensor]]:
    cnn = {k: v.detach().cpu().contiguous() for k, v in model.cnn.state_dict().items()}
    fwd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not k.startswith("cnn.")}
    return {"diffraction_to_obj": cnn, "forward_model": fwd}


def weight_files(model: PtychoPINN) -> list[WeightFile]:
    """The model's two state dicts as safetensors files."""
    from safetensors.torch import save

    return [WeightFile(name, f"models/{name}.safetensors", save(state),
                       {"n_tensors": len(state), "n_parameters": int(sum(t.numel() for t in state.values()))})
            for name, state in _state_parts(model).items()]


def save_bundle(model: PtychoPINN, path: str | os.PathLike, config: dict[str, Any] | None = None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``model`` as a format-2.0 bundle, atomically; returns ``path``, ``sha256`` and ``size_bytes``.

    ``config`` (the training configuration) and ``extra`` (provenance: data paths
    and digests) are recorded in the manifest as JSON.
    """
    return write_model_bundle(path, weight_files(model), backend="torch",
                              backend_version=torch.__version__.split("+")[0], model_config=model.cfg,
                              intensity_scale=float(model.intensity_scale), config=config, provenance=extra)


def _state(entry: dict[str, Any], data: bytes, major: int) -> dict[str, torch.Tensor]:
    # Read on the CPU: a failure here is the member's fault, never the device's (the model moves after).
    try:
        if major >= 2:
            from safetensors.torch import load

            return load(data)
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors and torch raise several types for damaged or non-tensor payloads
        kind = "safetensors" if major >= 2 else "plain tensors"
        raise BundleError(f"cannot load {entry['file']!r} as {kind} "
                          f"({type(exc).__name__}: {(str(exc).splitlines() or [''])[0]})") from None


def build_model(manifest: dict[str, Any], members: dict[str, bytes], device: str = "cpu") -> PtychoPINN:
    """The :class:`PtychoPINN` a checked bundle describes, in eval mode on ``device``."""
    major = format_major(manifest)
    states = {entry["name"]: _state(entry, members[entry["file"]], major) for entry in manifest["models"]}
    for needed in _MODELS:
        if needed not in states:
            raise BundleError(f"manifest lists no {needed!r} model")
    try:
        cfg = ModelConfig.from_dict(manifest["model_config"], legacy=True)
        fwd = states["forward_model"]
        model = PtychoPINN(cfg, fwd["probe"].cpu(), float(fwd["intensity_scale"]))
        model.load_state_dict({**{f"cnn.{k}": v for k, v in states["diffraction_to_obj"].items()}, **fwd},
                              strict=True)
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3]) if first else type(exc).__name__
        raise BundleError(f"weights do not fit the model described by the manifest ({detail})") from None
    return model.to(device).eval()


def load_model(manifest: dict[str, Any], members: dict[str, bytes], *, device: str = "auto") -> TorchLoadedModel:
    """The torch backend's :meth:`~fly64_train.backends.Backend.load_model` (``auto``: a GPU when present)."""
    device = inference_device(device)
    return TorchLoadedModel(build_model(manifest, members, device), device)
