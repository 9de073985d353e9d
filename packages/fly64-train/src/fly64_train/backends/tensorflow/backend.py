"""The TensorFlow (Keras 3) implementation of :class:`fly64_train.core.seam.Backend`.

Importing this module imports TensorFlow (through the package's ``__init__`` settings);
:func:`fly64_train.core.seam.get_backend` does so only when a job or a bundle asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import tensorflow  # noqa: F401  -- a missing framework fails get_backend here, with the package named

if TYPE_CHECKING:
    from fly64_train.bundle.manifest import BundleManifest
    from fly64_train.core.seam import LoadedModel
    from fly64_train.training.config import TrainConfig
    from fly64_train.training.result import TrainResult


class TensorflowBackend:
    """Trains with ``model.fit``; bundles hold the weights as Keras ``.weights.h5`` files."""

    name = "tensorflow"

    def train(self, config: TrainConfig) -> TrainResult:
        from fly64_train.backends.tensorflow.train import train_job

        return train_job(config)

    def load_model(self, manifest: BundleManifest, members: dict[str, bytes], *, device: str = "auto") -> LoadedModel:
        from fly64_train.backends.tensorflow.bundle import build_model
        from fly64_train.backends.tensorflow.loaded_model import TensorflowLoadedModel

        return TensorflowLoadedModel(build_model(manifest, members), device)


BACKEND = TensorflowBackend()
