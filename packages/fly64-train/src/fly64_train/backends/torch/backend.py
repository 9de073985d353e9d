"""The PyTorch + Lightning implementation of :class:`fly64_train.core.seam.Backend`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fly64_train.bundle.manifest import BundleManifest
    from fly64_train.core.seam import LoadedModel
    from fly64_train.training.config import TrainConfig
    from fly64_train.training.result import TrainResult


class TorchBackend:
    """Trains with Lightning; bundles hold the weights as plain tensors."""

    name = "torch"

    def train(self, config: TrainConfig) -> TrainResult:
        from fly64_train.backends.torch.train import train_job

        return train_job(config)

    def load_model(self, manifest: BundleManifest, members: dict[str, bytes], *, device: str = "auto") -> LoadedModel:
        from fly64_train.backends.torch.bundle import load_model

        return load_model(manifest, members, device=device)


BACKEND = TorchBackend()
