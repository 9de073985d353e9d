"""Import pty-chi, standing in for torchvision's one symbol it needs when no working torchvision exists.

pty-chi 2.2.0 imports ``torchvision.transforms.GaussianBlur`` at the top of
``ptychi/utils.py`` and uses it in one place: smoothing a *random* initial guess
(``generate_gaussian_random_image``), which Phase F never calls (it starts from a
flat object). The registry's torchvision wheels for torch 2.13 are CUDA builds:
next to the CPU torch of a laptop or CI they fail to import ("operator
torchvision::nms does not exist"). So the Makefile installs pty-chi without
torchvision (``--no-deps``, its other requirements are fly64-iterative's), and
:func:`load_ptychi` puts a minimal ``torchvision.transforms`` holding a real
:class:`GaussianBlur` into ``sys.modules`` *only* when ``import torchvision``
fails, and only for as long as pty-chi's import takes: afterwards the name is
removed again, so no other code in the process sees the stand-in. Where a working
torchvision is installed (a GPU node with CUDA torch), it is used as is.
See docs/decisions.md, "Phase F: pty-chi without torchvision".
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

#: The pty-chi release Phase F is written and pinned against (constraints.txt).
PTYCHI_VERSION = "2.2.0"


class EngineUnavailable(RuntimeError):
    """pty-chi cannot be imported, or is not the pinned version."""


class GaussianBlur:
    """The subset of ``torchvision.transforms.GaussianBlur`` pty-chi calls: a fixed kernel and sigma.

    Same definition as torchvision's: a separable Gaussian kernel
    ``exp(-x^2 / (2 sigma^2))`` over ``x = -(k-1)/2 .. (k-1)/2``, normalised to sum 1,
    applied with reflect padding to the last two axes of an ``(..., H, W)`` tensor.
    """

    def __init__(self, kernel_size: int | tuple[int, int], sigma: float | tuple[float, float]) -> None:
        self.kernel_size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.sigma = (float(sigma), float(sigma)) if isinstance(sigma, (int, float)) else tuple(map(float, sigma))
        if any(k < 1 or k % 2 == 0 for k in self.kernel_size) or any(s <= 0 for s in self.sigma):
            raise ValueError(f"GaussianBlur needs odd positive kernel sizes and positive sigmas, got "
                             f"{self.kernel_size}, {self.sigma}")

    def __call__(self, img: Any) -> Any:
        import torch

        # torchvision: kernel_size is (x, y) and sigma is (sx, sy).
        kx, ky = self.kernel_size
        sx, sy = self.sigma
        dtype = img.dtype if img.is_floating_point() else torch.float32

        def kernel(size: int, sigma: float) -> torch.Tensor:
            x = torch.linspace(-(size - 1) / 2, (size - 1) / 2, size, dtype=dtype, device=img.device)
            k = torch.exp(-0.5 * (x / sigma) ** 2)
            return k / k.sum()

        shape = img.shape
        flat = img.reshape(-1, 1, shape[-2], shape[-1]).to(dtype)
        flat = torch.nn.functional.pad(flat, (kx // 2, kx // 2, ky // 2, ky // 2), mode="reflect")
        flat = torch.nn.functional.conv2d(flat, kernel(ky, sy).view(1, 1, ky, 1))
        flat = torch.nn.functional.conv2d(flat, kernel(kx, sx).view(1, 1, 1, kx))
        return flat.reshape(shape).to(img.dtype)


def _torchvision_works() -> bool:
    try:
        importlib.import_module("torchvision.transforms")
    except Exception:  # noqa: BLE001 - a CUDA torchvision beside a CPU torch raises RuntimeError, not ImportError
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]  # a half-imported torchvision must not be found by the next import
        return False
    return True


def load_ptychi() -> types.ModuleType:
    """Import and return ``ptychi`` (checked to be :data:`PTYCHI_VERSION`).

    Raises
    ------
    EngineUnavailable
        pty-chi is not installed, fails to import, or is another version.
    """
    if "ptychi" in sys.modules:
        return sys.modules["ptychi"]
    stand_in = not _torchvision_works()
    if stand_in:
        package = types.ModuleType("torchvision")
        transforms = types.ModuleType("torchvision.transforms")
        transforms.GaussianBlur = GaussianBlur  # type: ignore[attr-defined]
        package.transforms = transforms  # type: ignore[attr-defined]
        package.__fly64_stand_in__ = True  # type: ignore[attr-defined]
        sys.modules["torchvision"], sys.modules["torchvision.transforms"] = package, transforms
    try:
        ptychi = importlib.import_module("ptychi")
        importlib.import_module("ptychi.api")
        importlib.import_module("ptychi.api.task")
    except ImportError as exc:
        raise EngineUnavailable(f"pty-chi {PTYCHI_VERSION} is not importable ({exc}); run `make setup`") from None
    finally:
        if stand_in:
            # pty-chi's modules keep their own reference to GaussianBlur; nobody else should find the stand-in.
            sys.modules.pop("torchvision.transforms", None)
            sys.modules.pop("torchvision", None)
    version = getattr(ptychi, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version("ptychi")
    if version != PTYCHI_VERSION:
        raise EngineUnavailable(f"pty-chi {version} is installed; Phase F is pinned to {PTYCHI_VERSION} "
                                "(constraints.txt); run `make setup`")
    return ptychi
