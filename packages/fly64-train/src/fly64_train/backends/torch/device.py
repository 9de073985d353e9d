"""Device-aware training defaults of the torch backend, all in one place.

:func:`device_defaults` answers, for the accelerator a job asks for, the few
settings that depend on the hardware rather than on the study:

* on CUDA, ``torch.set_float32_matmul_precision("high")`` (TF32 tensor cores for
  float32 matmuls and convolutions) and ``cudnn.benchmark`` (autotuned
  convolution kernels: the input shapes never change within a job);
* on CUDA, a larger default batch (``batch_scale`` times the design's patterns per
  step) with the learning rate scaled by ``sqrt(batch_scale)`` (the usual rule for
  Adam), because 16 patterns per step leave a GPU almost idle; only when the job
  did not set ``batch_size`` itself;
* how many bytes of diffraction patterns may live on the training device
  (``resident_bytes``): a dataset that fits is copied there once and batched by
  index, one that does not is read lazily from disk by a DataLoader;
* the CNN's memory format (``channels_last`` on both: the convolution libraries'
  own layout, so no reorder around each convolution).

The CPU answers are the identity: the CPU defaults of :class:`TrainConfig` were
sized and measured for 2 cores.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fly64_train.core.device import check_device, normal_device

MIB = 2**20


@dataclass(frozen=True)
class DeviceDefaults:
    """What the torch backend does differently on one kind of device."""

    device_type: str
    """``cpu`` or ``cuda``: where training runs."""
    batch_scale: int = 1
    """Multiplier of the default batch (only when ``TrainConfig.batch_size`` is unset)."""
    lr_scale: float = 1.0
    """Multiplier of the learning rate that goes with ``batch_scale``."""
    resident_bytes: int = 256 * MIB
    """Largest diffraction array (bytes) kept on the device and batched by index; 0 = always read lazily."""
    matmul_precision: str = "highest"
    """``torch.set_float32_matmul_precision`` for the job."""
    cudnn_benchmark: bool = False
    """``torch.backends.cudnn.benchmark`` for the job."""
    channels_last: bool = True
    """Train the CNN in the channels_last (NHWC) memory format, the layout oneDNN's and cuDNN's fastest 3x3
    convolution kernels use (measured on 2 CPU cores: about 20 % more patterns/s; docs/performance.md)."""
    fixed_canvas: bool = False
    """Size a gs2 job's merge canvas once from all its groups (:meth:`PtychoPINN.fix_canvas`). On a GPU
    this spares every step a device sync (reading the batch's largest offset); on a CPU there is no
    sync to spare and each batch's own, smaller canvas is about 4 % faster per gs2 step."""

    def check(self) -> None:
        if self.device_type not in ("cpu", "cuda"):
            raise ValueError(f"device_type must be cpu or cuda, got {self.device_type!r}")
        if self.batch_scale < 1 or not self.lr_scale > 0 or self.resident_bytes < 0:
            raise ValueError("batch_scale must be >= 1, lr_scale > 0 and resident_bytes >= 0")
        if self.matmul_precision not in ("highest", "high", "medium"):
            raise ValueError(f"unknown matmul precision {self.matmul_precision!r}")

    def apply(self) -> None:
        """Set the process-wide torch switches (Lightning jobs run one per process)."""
        torch.set_float32_matmul_precision(self.matmul_precision)
        torch.backends.cudnn.benchmark = self.cudnn_benchmark


#: The GPU batch multiplier: 16 -> 128 patterns per step (measured to fill far more of an H200).
CUDA_BATCH_SCALE = 8


def device_type(accelerator: str) -> str:
    """``cuda`` when ``accelerator`` asks for a GPU (``cuda`` or its alias ``gpu``, or ``auto`` with one present)."""
    kind = normal_device(accelerator).partition(":")[0]
    if kind == "cuda":
        return "cuda"
    if kind == "auto" and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def inference_device(device: str) -> str:
    """The torch device a loaded model runs on, from a seam device name (:func:`fly64_train.core.device.check_device`).

    ``auto`` is the GPU when one is present, else the CPU; ``gpu:K`` is ``cuda:K``. A GPU torch does not
    see is a ValueError naming the device (not a failure to load the weights).
    """
    kind, index = check_device(device)
    if kind != "cuda":
        return device_type("auto") if kind == "auto" else "cpu"
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if index >= count:
        raise ValueError(f"device {device!r} asked for, but torch sees {count} GPU(s) on this machine")
    return f"cuda:{index}"


def device_defaults(accelerator: str) -> DeviceDefaults:
    """The defaults for a job run with Lightning's ``accelerator`` setting."""
    if device_type(accelerator) == "cuda":
        defaults = DeviceDefaults("cuda", batch_scale=CUDA_BATCH_SCALE, lr_scale=CUDA_BATCH_SCALE**0.5,
                                  resident_bytes=4096 * MIB, matmul_precision="high", cudnn_benchmark=True,
                                  fixed_canvas=True)
    else:
        defaults = DeviceDefaults("cpu")
    defaults.check()
    return defaults
