"""The backend seam: the only door from the framework-free layers to PyTorch or TensorFlow.

The study runner, evaluation and report never import a framework. They ask
:func:`get_backend` for a :class:`Backend` by name and talk to it through three
calls: train one job, load a bundle, predict object patches as numpy. Each
backend lives in its own sub-package (``fly64_train.backends.torch``,
``fly64_train.backends.tensorflow``) and is imported only when asked for, so a
torch-only session never imports TensorFlow. The seam lives in the core, below
evaluation and bundle, because the backends sit above them (they use the stitch
and the bundle writer): nothing below the backends imports ``fly64_train.backends``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

import numpy as np

from fly64_manifest import BACKENDS as BACKEND_NAMES
from fly64_manifest import backend_name

if TYPE_CHECKING:
    from fly64_train.bundle.manifest import BundleManifest
    from fly64_train.training.config import TrainConfig
    from fly64_train.training.result import TrainResult

#: Backend name (the one list, :data:`fly64_manifest.BACKENDS`) -> (module providing ``BACKEND``, what a
#: user installs for it: fly64-train's extra of that name, which pulls in the framework).
BACKENDS: dict[str, tuple[str, str]] = {
    name: (f"fly64_train.backends.{name}.backend", f"fly64-train[{name}]") for name in BACKEND_NAMES
}


#: Set (to ``1``) by ``--verbose``: a backend then lets its framework's own log lines through (TensorFlow's
#: C++ and absl logs), which it otherwise keeps out of our output. In the environment, so Dask workers see it.
FRAMEWORK_LOGS_ENV = "FLY64_FRAMEWORK_LOGS"


class BackendUnavailable(RuntimeError):
    """The backend's framework is not installed (or the name is unknown)."""


class LoadedModel(Protocol):
    """A trained model ready for inference, whatever framework holds it."""

    gridsize: int
    """Patterns per group the model was trained on (1 or 2)."""
    patch_size: int
    """N, the side of a diffraction pattern and of an object patch."""
    per_pattern: bool
    """Whether each pattern's patch depends on that pattern alone (one CNN shared by the group's patterns):
    then a gs2 model can predict any C patterns side by side, not only a position's real group."""

    def support(self) -> np.ndarray:
        """The (N, N) float mask of the object region the model predicts."""

    def predict_object(self, diffraction: np.ndarray) -> np.ndarray:
        """Object patches (B, C, N, N) complex64 from diffraction amplitudes (B, C, N, N) float32."""

    def stitch(self, patches: np.ndarray, ycoords: np.ndarray, xcoords: np.ndarray, shape: tuple[int, int],
               weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:func:`fly64_train.evaluation.stitch.stitch` of predicted patches, computed where the model runs
        (a GPU model scatters on its GPU); numpy in and out, equal to the numpy stitch to 1e-6."""


def check_model_input(diffraction: np.ndarray, gridsize: int, patch_size: int) -> None:
    """Refuse diffraction a :class:`LoadedModel` cannot predict from: it takes (B, gridsize^2, N, N) groups.

    Both backends' ``predict_object`` call it, so the refusal reads the same whichever framework runs.
    """
    c, n = gridsize**2, patch_size
    if diffraction.ndim != 4 or diffraction.shape[1:] != (c, n, n):
        raise ValueError(f"diffraction must have shape (B, {c}, {n}, {n}) for a gridsize-{gridsize} "
                         f"N={n} model, got {diffraction.shape}; group the patterns first")


class Backend(Protocol):
    """What the framework-free layers need from a framework."""

    name: str

    def train(self, config: TrainConfig) -> TrainResult:
        """Train one job (resuming from its last checkpoint when asked) and write its bundle."""

    def load_model(self, manifest: BundleManifest, members: dict[str, bytes], *, device: str = "auto") -> LoadedModel:
        """Build the model a bundle describes from its checked weight members, on ``device``
        (``auto``: a GPU when the framework sees one, else the CPU)."""


def get_backend(name: str) -> Backend:
    """The backend called ``name`` (an old spelling such as ``pytorch`` too); :class:`BackendUnavailable`
    names the missing package."""
    try:
        name = backend_name(name)
    except ValueError as exc:
        raise BackendUnavailable(str(exc)) from None
    module_name, package = BACKENDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendUnavailable(f"the {name} backend needs its framework, which is not installed "
                                 f"({exc.name or exc}); install {package}") from None
    return module.BACKEND
