"""The LightningModule wrapping :class:`~fly64_train.backends.torch.model.PtychoPINN`."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch

from fly64_train.backends.torch import physics
from fly64_train.backends.torch.model import PtychoPINN
from fly64_train.training.model_config import ModelConfig


class PtychoPINNModule(L.LightningModule):
    """Self-supervised PtychoPINN training: Poisson NLL of the observed diffraction.

    Parameters
    ----------
    model_config : dict
        :class:`ModelConfig` fields.
    probe : (N, N) complex array
        Fixed probe of the forward model (kept as a buffer, not a hyperparameter).
    intensity_scale : float
        The dataset's recorded ``s``; fixed.
    lr : float
        Adam learning rate.
    plateau_factor, plateau_patience : float, int
        ReduceLROnPlateau settings on the monitored loss.
    monitor : str
        ``"val_loss"`` when there is validation data, else ``"train_loss"``.
    count_split : float, optional
        Split each pattern's photons (binomial thinning): the CNN sees this
        fraction, the loss scores the rest. Fresh splits every training step;
        validation uses the same split every epoch so its losses compare.
    """

    #: Seed of the validation batches' photon splits (fixed, so val_loss compares across epochs).
    VAL_SPLIT_SEED = physics.VAL_SPLIT_SEED
    #: Checkpoint entry holding the monitored value of the checkpoint's epoch (see :meth:`on_save_checkpoint`).
    MONITOR_KEY = "fly64_monitor_value"

    def __init__(self, model_config: dict[str, Any], probe: np.ndarray, intensity_scale: float,
                 lr: float = 1e-3, plateau_factor: float = 0.5, plateau_patience: int = 2,
                 monitor: str = "val_loss", count_split: float | None = None) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["probe"])
        self.model = PtychoPINN(ModelConfig.from_dict(model_config), probe, intensity_scale)
        self._resumed_monitor_value: float | None = None

    @property
    def count_split(self) -> float | None:
        # .get: checkpoints saved before the photon split have no such hyperparameter.
        return self.hparams.get("count_split")

    def forward(self, diffraction: torch.Tensor) -> torch.Tensor:
        return self.model.predict_object(diffraction)

    def _common_step(self, batch: dict[str, torch.Tensor], stage: str, batch_idx: int = 0) -> torch.Tensor:
        """The loss of one batch, logged once per epoch as ``f"{stage}_loss"``.

        Training draws a fresh photon split every step; validation seeds it by
        ``batch_idx`` so that ``val_loss`` compares across epochs.
        """
        diffraction = batch["diffraction"]
        generator = None
        if stage == "val" and self.count_split is not None:
            generator = torch.Generator(device=diffraction.device)
            generator.manual_seed(self.VAL_SPLIT_SEED + batch_idx)
        offsets = batch["offsets"] if diffraction.shape[1] > 1 else None
        loss = self.model.loss(diffraction, offsets, self.count_split, generator)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=diffraction.shape[0])
        return loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "train", batch_idx)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "val", batch_idx)

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.model.predict_object(batch["diffraction"])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the epoch's monitored value: Lightning saves at validation end, before the epoch's
        ReduceLROnPlateau step, so a resumed run must replay that step with this value."""
        value = self.trainer.callback_metrics.get(self.hparams.monitor)
        if value is not None:
            checkpoint[self.MONITOR_KEY] = float(value)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._resumed_monitor_value = checkpoint.get(self.MONITOR_KEY)

    def on_train_start(self) -> None:
        self._relay_optimizer_state()
        self._replay_missed_plateau_step()

    def _replay_missed_plateau_step(self) -> None:
        """After a resume, take the plateau step the checkpoint was written before (once per epoch)."""
        if self._resumed_monitor_value is None:
            return
        for config in self.trainer.lr_scheduler_configs:
            scheduler = config.scheduler
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) \
                    and scheduler.last_epoch < self.trainer.current_epoch:
                scheduler.step(self._resumed_monitor_value)
        self._resumed_monitor_value = None

    def _relay_optimizer_state(self) -> None:
        """Give resumed optimizer state the memory layout of its parameter.

        A checkpoint keeps each state tensor's strides: one written in NCHW (before channels_last
        training, or with it off) restores NCHW ``exp_avg`` next to an NHWC weight. The fused Adam
        kernel walks parameter and state in memory order, so mismatched layouts would pair the wrong
        elements without any error. Lightning has restored the optimizer by the time this hook runs.
        """
        for optimizer in self.trainer.optimizers:
            for param, state in optimizer.state.items():
                for key, value in state.items():
                    if isinstance(value, torch.Tensor) and value.shape == param.shape \
                            and value.stride() != param.stride():
                        state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)

    def configure_optimizers(self) -> dict[str, Any]:
        # The fused kernel updates every parameter in one pass (a few % of a CPU step); Lightning has moved
        # the module to its device by now, and torch fuses Adam on CPU and CUDA only.
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr,
                                     fused=self.device.type in ("cpu", "cuda"))
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=self.hparams.plateau_factor, patience=self.hparams.plateau_patience)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": self.hparams.monitor, "interval": "epoch"}}
