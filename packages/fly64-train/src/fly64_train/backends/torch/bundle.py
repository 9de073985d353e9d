"""The torch backend's bundle: safetensors weight files (format 2.0), or ``torch.save`` files of format 1.x
(read only); the mirror of :mod:`fly64_train.backends.tensorflow.bundle`. The container, manifest and checks
are :mod:`fly64_train.bundle`'s.

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

from fly64_train.backends.torch import physics
from fly64_train.backends.torch.device import inference_device
from fly64_train.backends.torch.loaded_model import TorchLoadedModel
from fly64_train.backends.torch.model import ObjectCNN, PtychoPINN
from fly64_train.bundle import (
    BUNDLE_NAME,
    BundleError,
    BundleManifest,
    WeightFile,
    format_major,
    read_manifest,
    write_model_bundle,
)
from fly64_train.training.model_config import ModelConfig
from fly64_train.training.recorded import recorded_configs

__all__ = ["BUNDLE_NAME", "BundleError", "build_model", "load_bundle", "load_model", "read_manifest", "save_bundle",
           "weight_files"]

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


#: safetensors' name of each dtype a torch bundle holds.
_DTYPE_NAMES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
                torch.complex64: "C64", torch.int64: "I64", torch.int32: "I32", torch.bool: "BOOL"}
_MAX_HEADER_BYTES = 1 << 20

#: name -> (dtype name, shape) of every tensor of a weight file.
Layout = dict[str, tuple[str, tuple[int, ...]]]


def expected_layouts(cfg: ModelConfig) -> dict[str, Layout]:
    """What each weight file of a model of ``cfg`` holds, read from the model built on the meta device
    (shapes without storage: a width-1000 config costs nothing here)."""
    with torch.device("meta"):
        cnn = ObjectCNN(cfg)
    n = cfg.patch_size
    # PtychoPINN registers these three buffers (its constructor needs a real probe, so they are listed).
    forward = {"probe": ("C64", (n, n)), "support": ("F32", (n, n)), "intensity_scale": ("F32", ())}
    return {"diffraction_to_obj": {k: (_DTYPE_NAMES.get(v.dtype, str(v.dtype)), tuple(v.shape))
                                   for k, v in cnn.state_dict().items()},
            "forward_model": forward}


def safetensors_layout(data: bytes) -> Layout:
    """Tensor names, dtypes and shapes from a safetensors file's JSON header, before any tensor is read."""
    from fly64_manifest import ManifestError, parse_json

    if len(data) < 8:
        raise ValueError("too short for a safetensors header")
    size = int.from_bytes(data[:8], "little")
    if size > min(len(data) - 8, _MAX_HEADER_BYTES):
        raise ValueError(f"its header declares {size} bytes, more than the file or the {_MAX_HEADER_BYTES} cap")
    try:
        header = parse_json(data[8:8 + size], "header")
    except ManifestError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(header, dict):
        raise ValueError("its header is not a JSON object")
    layout: Layout = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        shape = info.get("shape") if isinstance(info, dict) else None
        dtype = info.get("dtype") if isinstance(info, dict) else None
        if not isinstance(dtype, str) or not isinstance(shape, list) or \
                not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise ValueError(f"tensor {name!r} has no valid dtype and shape in the header")
        layout[name] = (dtype, tuple(shape))
    return layout


class LayoutError(ValueError):
    """A weight file's tensors are not those of the model the manifest describes."""


def _check_layout(got: Layout, want: Layout) -> None:
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if missing:
        raise LayoutError(f"no tensor {missing[0]!r}, which the model needs")
    if extra:
        raise LayoutError(f"tensor {extra[0]!r} is not part of the model")
    for name in want:  # the model's order: the first layer's mismatch is named first
        if got[name] != want[name]:
            raise LayoutError(f"tensor {name!r} is {got[name][0]} {list(got[name][1])}, where it needs "
                             f"{want[name][0]} {list(want[name][1])}")


def _state(member: str, data: bytes, major: int, want: Layout) -> dict[str, torch.Tensor]:
    # Read on the CPU: a failure here is the member's fault, never the device's (the model moves after).
    # Shapes and dtypes are compared before a tensor is allocated (format 2: from the header).
    if major >= 2:
        from safetensors.torch import load

        try:
            layout = safetensors_layout(data)
        except ValueError as exc:
            raise ValueError(f"cannot load {member!r} as safetensors ({exc})") from None
        _check_layout(layout, want)
        try:
            return load(data)
        except Exception as exc:  # safetensors raises its own types for inconsistent offsets
            raise ValueError(f"cannot load {member!r} as safetensors ({type(exc).__name__}: "
                             f"{(str(exc).splitlines() or [''])[0]})") from None
    if not data.startswith(b"PK\x03\x04"):
        # A format-1.x torch.save file is a zip; anything else (say a relabelled safetensors file) is refused
        # here by us rather than by torch, whose text would suggest switching its safety check off.
        raise ValueError(f"cannot load {member!r} as plain tensors: not a torch.save file, which a "
                         "format-1.x bundle holds")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch's own text is not passed on (see above)
        raise ValueError(f"cannot load {member!r} as plain tensors ({type(exc).__name__}); this "
                         "reader never unpickles anything else") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"cannot load {member!r} as plain tensors: not a dictionary of tensors")
    _check_layout({k: (_DTYPE_NAMES.get(v.dtype, str(v.dtype)), tuple(v.shape)) for k, v in state.items()}, want)
    return state


def _check_values(states: dict[str, dict[str, torch.Tensor]], cfg: ModelConfig, intensity_scale: float,
                  files: dict[str, str]) -> None:
    """Every tensor finite, and the forward model's physics equal to what the manifest and config define."""
    for name, state in states.items():
        for key, tensor in state.items():
            if (tensor.is_floating_point() or tensor.is_complex()) and not bool(torch.isfinite(tensor).all()):
                raise BundleError(f"model file {files[name]!r}: tensor {key!r} holds NaN or infinite values")
            if key.endswith("running_var") and bool((tensor < 0).any()):
                raise BundleError(f"model file {files[name]!r}: tensor {key!r} holds negative variances")
    forward, member = states["forward_model"], files["forward_model"]
    if float(forward["intensity_scale"]) != float(torch.tensor(intensity_scale, dtype=torch.float32)):
        raise BundleError(f"model file {member!r}: tensor 'intensity_scale' is {float(forward['intensity_scale'])}, "
                          f"the manifest's intensity_scale is {intensity_scale}")
    if not torch.equal(forward["support"], physics.support_mask(cfg.patch_size, cfg.support_fraction)):
        raise BundleError(f"model file {member!r}: tensor 'support' is not the model's support mask "
                          f"(support_fraction {cfg.support_fraction} of N = {cfg.patch_size})")
    if not float((forward["probe"].abs() ** 2).sum()) > 0:
        raise BundleError(f"model file {member!r}: tensor 'probe' is identically zero")
    scale = states["diffraction_to_obj"]["input_scale"]
    if not float(scale) > 0:
        raise BundleError(f"model file {files['diffraction_to_obj']!r}: tensor 'input_scale' must be positive, "
                          f"got {float(scale)}")


def build_model(manifest: BundleManifest, members: dict[str, bytes], device: str = "cpu") -> PtychoPINN:
    """The :class:`PtychoPINN` a checked bundle describes, in eval mode on ``device``.

    Nothing is built before every recorded key, every tensor's dtype and shape (from the
    safetensors header) and every value has been checked against the manifest.
    """
    major = format_major(manifest)
    try:
        recorded = recorded_configs(manifest, legacy=True)
    except ValueError as exc:
        raise BundleError(str(exc)) from None
    cfg = recorded.model
    files = {entry.name: entry.file for entry in manifest.models}
    for needed in _MODELS:
        if needed not in files:
            raise BundleError(f"manifest lists no {needed!r} model")
    if set(files) != set(_MODELS):
        raise BundleError(f"manifest lists model(s) {sorted(set(files) - set(_MODELS))}, a torch bundle holds "
                          f"only {list(_MODELS)}")
    layouts = expected_layouts(cfg)
    states = {}
    for name, member in files.items():
        try:
            states[name] = _state(member, members[member], major, layouts[name])
        except LayoutError as exc:
            raise BundleError(f"weights do not fit the model the manifest describes: model file {member!r}: "
                              f"{exc}") from None
        except ValueError as exc:  # names the member already
            raise BundleError(str(exc)) from None
    _check_values(states, cfg, recorded.intensity_scale, files)
    try:
        fwd = states["forward_model"]
        model = PtychoPINN(cfg, fwd["probe"].cpu(), float(fwd["intensity_scale"]))
        model.load_state_dict({**{f"cnn.{k}": v for k, v in states["diffraction_to_obj"].items()}, **fwd},
                              strict=True)
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3]) if first else type(exc).__name__
        raise BundleError(f"weights do not fit the model described by the manifest ({detail})") from None
    return model.to(device).eval()


def load_model(manifest: BundleManifest, members: dict[str, bytes], *, device: str = "auto") -> TorchLoadedModel:
    """The torch backend's :meth:`~fly64_train.core.seam.Backend.load_model` (``auto``: a GPU when present)."""
    device = inference_device(device)
    return TorchLoadedModel(build_model(manifest, members, device), device)


def load_bundle(path: str | os.PathLike, map_location: str = "cpu", *,
                expected_sha256: str | None = None) -> PtychoPINN:
    """A torch bundle as the :class:`PtychoPINN` itself (eval mode), for code that wants torch tensors.

    Framework-free code uses :func:`fly64_train.load_bundle`, which returns a numpy ``LoadedModel``.
    """
    from fly64_train.bundle import load_bundle as load_any

    loaded = load_any(path, expected_sha256=expected_sha256, device=str(map_location))
    model = getattr(loaded, "model", None)
    if not isinstance(model, PtychoPINN):
        raise BundleError(f"{path}: not a torch bundle; use fly64_train.load_bundle for other backends")
    return model
