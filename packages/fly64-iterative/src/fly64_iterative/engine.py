"""One pty-chi reconstruction: a flat start, the simulation's probe held fixed, exact positions.

:class:`EngineConfig` is what the user chooses (engine, epochs, batch size, noise
model, device, seed); :func:`reconstruct` builds pty-chi's own option class for the
engine (``LSQMLOptions``, ``EPIEOptions``, ``DMOptions``), runs it and returns the
object with the wall time of the iterations alone.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from fly64_iterative.convention import ptychi_positions, ptychi_probe
from fly64_iterative.ptychi_import import load_ptychi
from fly64_train.core.device import check_device, normal_device

ENGINES = ("lsqml", "epie", "dm")
NOISE_MODELS = ("poisson", "gaussian")
#: Engines whose update follows a chosen likelihood; ePIE and DM project measured amplitudes
#: (a least-squares fit of amplitudes), so their noise model is fixed.
LIKELIHOOD_ENGINES = ("lsqml",)


@dataclass(frozen=True)
class EngineConfig:
    """How pty-chi reconstructs every job of a run."""

    engine: str = "lsqml"
    """pty-chi reconstructor: ``lsqml`` (least-squares maximum likelihood, the default), ``epie`` or ``dm``."""
    epochs: int = 50
    """Iterations over all patterns."""
    batch_size: int = 32
    """Patterns per object update (LSQML, ePIE); DM updates from all patterns each epoch."""
    noise_model: str | None = None
    """``poisson`` or ``gaussian`` (LSQML only; ``None``: poisson for LSQML, gaussian, i.e. amplitude
    least squares, for ePIE and DM, the only model they have)."""
    device: str = "auto"
    """A name of the one device vocabulary (:mod:`fly64_train.core.device`): ``auto`` (the GPU when torch
    sees one), ``cpu``, ``cuda`` (the current GPU) or ``cuda:K``; ``gpu``/``gpu:K`` are aliases of ``cuda``."""
    seed: int | None = None
    """Seeds torch, numpy and pty-chi's minibatch order (``None``: pty-chi's default, unseeded)."""

    def check(self) -> None:
        """Raise ValueError naming the field for a value no reconstruction can use."""
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.noise_model is not None and self.noise_model not in NOISE_MODELS:
            raise ValueError(f"noise_model must be one of {', '.join(NOISE_MODELS)}, got {self.noise_model!r}")
        if self.noise_model == "poisson" and self.engine not in LIKELIHOOD_ENGINES:
            raise ValueError(f"noise_model poisson needs engine lsqml ({self.engine} fits amplitudes: gaussian)")
        check_device(self.device)  # its message names the accepted forms ("device must be auto, cpu, cuda, ...")
        if self.seed is not None and self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")

    @property
    def resolved_noise_model(self) -> str:
        if self.noise_model is not None:
            return self.noise_model
        return "poisson" if self.engine in LIKELIHOOD_ENGINES else "gaussian"


@dataclass(frozen=True)
class Reconstruction:
    """What one pty-chi run returns."""

    object: np.ndarray
    """The reconstructed complex object, in the frame (and shape) of the truth."""
    wall_s: float
    """Wall time of pty-chi's iterations alone (task built, data on the device), synchronised on a GPU."""
    device: str
    """Where it ran: ``cpu`` or ``cuda:<k>``."""
    device_name: str
    """The device's model name (the CPU's architecture on a CPU)."""
    options: dict[str, Any]
    """The engine settings the run set (recorded in the manifest)."""


def resolve_device(device: str) -> str:
    """The torch device a run uses: ``cpu`` or ``cuda:K`` (``auto`` and ``cuda`` alone: torch's current GPU).

    ValueError naming the device when it asks for a GPU torch does not see (pty-chi would fall back to the
    CPU unasked).
    """
    import torch

    kind, index = check_device(device)
    if kind == "cpu" or (kind == "auto" and not torch.cuda.is_available()):
        return "cpu"
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if kind == "auto" or (":" not in device and count):
        return f"cuda:{torch.cuda.current_device()}"
    if index >= count:
        raise ValueError(f"--device {normal_device(device)}: torch sees {count} CUDA device(s) on this machine")
    return f"cuda:{index}"


@contextlib.contextmanager
def _torch_globals() -> Iterator[None]:
    """pty-chi sets torch's default device, dtype and determinism for the process: restore them after."""
    import torch

    device, dtype = torch.get_default_device(), torch.get_default_dtype()
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        yield
    finally:
        torch.set_default_device(device)
        torch.set_default_dtype(dtype)
        torch.use_deterministic_algorithms(deterministic)


def _current_gpu(device: str) -> contextlib.AbstractContextManager[Any]:
    """pty-chi's options name no GPU index (``Devices.GPU`` is torch's ``cuda``: the *current* GPU), so
    ``device`` (``cuda:K``) is made the current one for the run; torch restores the previous one after."""
    if not device.startswith("cuda"):
        return contextlib.nullcontext()
    import torch

    return torch.cuda.device(device)


def engine_options(cfg: EngineConfig) -> dict[str, Any]:
    """The settings :func:`reconstruct` gives pty-chi, as recorded in the manifest."""
    return {
        "options_class": {"lsqml": "LSQMLOptions", "epie": "EPIEOptions", "dm": "DMOptions"}[cfg.engine],
        "noise_model": cfg.resolved_noise_model,
        "object_start": "flat (amplitude 1, phase 0)",
        "probe": "the simulation's, fixed (optimizable=False), scaled to counts (fly64_iterative.convention)",
        "positions": "exact, fixed (optimizable=False)",
        "remove_object_probe_ambiguity": False,
        "rescale_probe_intensity_in_first_epoch": False if cfg.engine == "lsqml" else None,
        "fft_shift": True,
        "random_seed": cfg.seed,
    }


def _options(cfg: EngineConfig, device: str) -> Any:
    import ptychi.api as api

    options = {"lsqml": api.LSQMLOptions, "epie": api.EPIEOptions, "dm": api.DMOptions}[cfg.engine]()
    options.data_options.fft_shift = True  # DATA-001 patterns hold DC at (N/2, N/2)
    options.object_options.optimizable = True
    # These rescale the probe even when it is not optimised; the true probe must stay as it is.
    options.object_options.remove_object_probe_ambiguity.enabled = False
    options.probe_options.optimizable = False
    options.probe_position_options.optimizable = False
    rec = options.reconstructor_options
    rec.num_epochs = cfg.epochs
    rec.batch_size = cfg.batch_size
    rec.random_seed = cfg.seed
    rec.default_device = api.Devices.CPU if device == "cpu" else api.Devices.GPU
    rec.displayed_loss_function = None
    if cfg.engine == "lsqml":
        rec.noise_model = api.NoiseModels.POISSON if cfg.resolved_noise_model == "poisson" else api.NoiseModels.GAUSSIAN
        rec.rescale_probe_intensity_in_first_epoch = False
    return options


def reconstruct(counts: np.ndarray, probe: np.ndarray, ycoords: np.ndarray, xcoords: np.ndarray,
                object_shape: tuple[int, int], intensity_scale: float, cfg: EngineConfig,
                photon_share: float = 1.0, start: np.ndarray | None = None) -> Reconstruction:
    """Fit an object to ``counts`` (n, N, N, DC-centred) with ``cfg``'s engine, from ``start`` or a flat object.

    ``photon_share`` is the fraction of the recorded photons ``counts`` holds (0.5 for half A of
    the information score's split): the probe is scaled by its square root, so the object stays
    on the truth's scale. ``start``: the starting object, complex, of ``object_shape`` and on the
    truth's scale (Phase E's PINN prediction: :mod:`fly64_iterative.pinn_start`); ``None``: flat
    (amplitude 1, phase 0).
    """
    cfg.check()
    load_ptychi()
    import torch
    from ptychi.api.task import PtychographyTask

    device = resolve_device(cfg.device)
    pos_y, pos_x = ptychi_positions(ycoords, xcoords, object_shape)
    if start is None:
        first = np.ones((1, *object_shape), np.complex64)
    else:
        start = np.asarray(start)
        if start.shape != tuple(object_shape) or not np.isfinite(start).all():
            raise ValueError(f"the starting object must be a finite {tuple(object_shape)} array, got "
                             f"{start.shape}{'' if np.isfinite(start).all() else ' with non-finite values'}")
        first = start.astype(np.complex64)[None]
    with _torch_globals(), _current_gpu(device), warnings.catch_warnings():
        # pty-chi converts grad-tracking tensors to numbers (its loss display each epoch, and its set-up
        # of a non-flat start): torch warns each time, about pty-chi's code, not ours to act on.
        warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")
        task = PtychographyTask(
            _options(cfg, device), diffraction_data=np.ascontiguousarray(counts, dtype=np.float32),
            object_data=first, probe_data=ptychi_probe(probe, intensity_scale, photon_share),
            probe_position_x_px=pos_x, probe_position_y_px=pos_y)
        _synchronise(device)
        started = time.perf_counter()
        task.run()
        _synchronise(device)
        wall_s = time.perf_counter() - started
        obj = task.get_data_to_cpu("object", as_numpy=True)[0].astype(np.complex64)
        del task
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else _cpu_name()
    return Reconstruction(object=obj, wall_s=wall_s, device=device, device_name=name, options=engine_options(cfg))


def _synchronise(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def _cpu_name() -> str:
    import platform

    return platform.processor() or platform.machine() or "cpu"
