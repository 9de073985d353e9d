"""One training job, end to end, as named build steps: data, model, callbacks, trainer, fit, export.

:func:`train_job` is what the torch backend runs per (dose, view, gridsize).
Job directory layout::

    <job_dir>/checkpoints/last.ckpt      written every epoch; resumed from when present
    <job_dir>/checkpoints/best-*.ckpt    lowest monitored loss
    <job_dir>/checkpoints/resume_settings.json  data sha256 and settings a resume must match
    <job_dir>/logs/version_<k>/metrics.csv   (csv logger; tensorboard events likewise)
    <job_dir>/wts.h5.zip                 the bundle (best weights)
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L
import torch

from fly64_train.backends.torch.bundle import BUNDLE_NAME, save_bundle
from fly64_train.backends.torch.checkpoint import (
    LAST_NAME,
    CheckpointError,
    check_resume_checkpoint,
    checkpoint_callbacks,
    load_best_state_dict,
)
from fly64_train.backends.torch.data import DataConfig, Fly64DataModule
from fly64_train.backends.torch.device import DeviceDefaults, device_defaults
from fly64_train.backends.torch.lightning_module import PtychoPINNModule
from fly64_train.training.config import TrainConfig
from fly64_train.training.job_folder import check_resume, prepare_job_folder, record_resume_settings
from fly64_train.training.option import max_time_seconds
from fly64_train.training.provenance import bundle_provenance, finite, job_relative
from fly64_train.training.result import TrainResult
from fly64_train.training.stops import NothingTrained

__all__ = ["CheckpointError", "TrainingJob", "train_job"]


def train_job(config: TrainConfig, callbacks: list[Any] | None = None) -> TrainResult:
    """Train one PtychoPINN job and write its bundle.

    Parameters
    ----------
    config : TrainConfig
    callbacks : list, optional
        Extra Lightning callbacks (e.g. for monitoring).

    Raises
    ------
    fly64_data.contract.ContractError
        If the dataset fails DATA-001 (before any folder is written).
    CheckpointError
        If the job's ``last.ckpt`` is not plain tensors or points outside its ``checkpoints/`` folder.
    """
    return TrainingJob(config, callbacks).run()


class TrainingJob:
    """One job's build steps, in the order :meth:`run` takes them.

    Parameters
    ----------
    config : TrainConfig
    callbacks : list, optional
        Extra Lightning callbacks.
    defaults : DeviceDefaults, optional
        Device-dependent settings; default :func:`device_defaults` of ``config.torch.accelerator``.
    """

    def __init__(self, config: TrainConfig, callbacks: list[Any] | None = None,
                 defaults: DeviceDefaults | None = None) -> None:
        config.check()
        self.config = config
        self.extra_callbacks = list(callbacks or [])
        self.defaults = defaults or device_defaults(config.torch.accelerator)
        self.defaults.check()
        self.job_dir = Path(config.job_dir)
        self.ckpt_dir = self.job_dir / "checkpoints"
        # --max-time bounds the job from here: data preparation, training and validation all count.
        self.started = time.monotonic()
        budget = max_time_seconds(config.max_time)
        self.deadline = JobDeadline(None if budget is None else self.started + budget)

    def run(self) -> TrainResult:
        started = self.started
        data = self.build_data()  # validation happens here, before any folder, logger or Trainer exists
        resume_from = self.resume_checkpoint()
        module = self.build_model(data)
        best, last = checkpoint_callbacks(self.ckpt_dir, self.monitor(data))
        logger = self.build_logger()
        trainer = self.build_trainer([best, last, *self.extra_callbacks], logger)
        self.fit(trainer, module, data, resume_from)
        if self.deadline.reached and trainer.current_epoch == 0:
            # Only a finished epoch yields weights worth exporting (and a checkpoint to resume from).
            raise NothingTrained(f"--max-time {self.config.max_time} ran out before the first epoch finished "
                                 f"({trainer.global_step} optimisation steps); nothing exported, rerun with a "
                                 "larger --max-time")
        bundle = self.export(module, data, trainer, best)
        return self.result(data, trainer, best, logger, bundle, resume_from, time.monotonic() - started)

    # -- build steps -------------------------------------------------------------------------------

    def build_data(self) -> Fly64DataModule:
        """The validated, grouped training file."""
        cfg = self.config
        batch = cfg.batch_size if cfg.batch_size is not None else cfg.groups_per_step * self.defaults.batch_scale
        return Fly64DataModule(DataConfig(
            train_path=cfg.train_path, gridsize=cfg.gridsize, neighbor_count=cfg.neighbor_count,
            n_groups=cfg.n_groups, grouping_seed=cfg.grouping_seed, batch_size=batch,
            val_fraction=cfg.val_fraction, num_workers=cfg.torch.num_workers, seed=cfg.seed,
            resident_bytes=self.defaults.resident_bytes))

    def resume_checkpoint(self) -> str | None:
        """``last.ckpt`` when resuming and present, after checking it holds no code and no foreign paths.

        Also the first step that touches the job folder: no link at ``checkpoints/`` or ``logs/``, and a
        checkpoint of other data or settings is refused (ResumeMismatch); a fresh start records them.
        """
        prepare_job_folder(self.job_dir)
        last = self.ckpt_dir / LAST_NAME
        if not (check_resume(self.config) and last.is_file()):
            record_resume_settings(self.config)
            return None
        check_resume_checkpoint(last, self.ckpt_dir)
        return str(last)

    def monitor(self, data: Fly64DataModule) -> str:
        return "val_loss" if data.has_validation else "train_loss"

    def learning_rate(self) -> float:
        """The configured rate, scaled with the batch when the device enlarged the default batch."""
        scaled = self.config.batch_size is None and self.defaults.batch_scale > 1
        return self.config.lr * (self.defaults.lr_scale if scaled else 1.0)

    def build_model(self, data: Fly64DataModule) -> PtychoPINNModule:
        cfg, info = self.config, data.info
        model_cfg = replace(cfg.model, patch_size=info.patch_size, gridsize=cfg.gridsize)
        model_cfg.check()
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        module = PtychoPINNModule(model_cfg.to_dict(), info.probe, info.intensity_scale, lr=self.learning_rate(),
                                  plateau_factor=cfg.plateau_factor, plateau_patience=cfg.plateau_patience,
                                  monitor=self.monitor(data), count_split=cfg.count_split)
        if cfg.gridsize > 1 and self.defaults.fixed_canvas:  # no step asks the device to size the canvas
            module.model.fix_canvas(data.groups.offsets)
        if self.defaults.channels_last:
            # Only the strides change: values, state_dict keys and checkpoints stay the same.
            module = module.to(memory_format=torch.channels_last)
        return module

    def build_logger(self) -> Any:
        from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

        if self.config.logger == "csv":
            return CSVLogger(save_dir=str(self.job_dir), name="logs")
        if self.config.logger == "tensorboard":
            return TensorBoardLogger(save_dir=str(self.job_dir), name="logs", default_hp_metric=False)
        return False

    def build_trainer(self, callbacks: list[Any], logger: Any) -> L.Trainer:
        cfg, opts = self.config, self.config.torch
        self.defaults.apply()
        progress = sys.stderr.isatty() if cfg.progress_bar is None else cfg.progress_bar
        with _without_lightning_tips():
            return L.Trainer(
                accelerator=opts.device_kind, devices=opts.devices, strategy=opts.strategy, precision=opts.precision,
                # max_time is the JobDeadline's: Lightning's Timer starts late (at fit) and lets the
                # epoch it stops in run its whole validation, and counts the cut epoch as completed.
                deterministic=cfg.deterministic, max_epochs=cfg.max_epochs, max_time=None,
                logger=logger, callbacks=[*callbacks, self.deadline], enable_progress_bar=progress,
                enable_model_summary=progress, default_root_dir=str(self.job_dir), log_every_n_steps=1,
                limit_train_batches=cfg.limit_train_batches, num_sanity_val_steps=0,
            )

    def fit(self, trainer: L.Trainer, module: PtychoPINNModule, data: Fly64DataModule,
            resume_from: str | None) -> None:
        with warnings.catch_warnings():
            # Lightning 2.6 calls a torch pytree API that torch 2.13 deprecates; nothing for a user to act on.
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
            # The folder holds our resume_settings.json before the first checkpoint; whether a job
            # resumes is decided (and checked) by training.job_folder, so Lightning's warning is noise.
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
            # weights_only: Lightning's own resume must not unpickle code either.
            try:
                trainer.fit(module, datamodule=data, ckpt_path=resume_from, weights_only=True)
            except DeadlineReached:
                # The cut epoch is dropped: current_epoch counts finished epochs, whose checkpoints stay.
                logging.getLogger(__name__).info("--max-time %s reached after %d finished epoch(s)",
                                                 self.config.max_time, trainer.current_epoch)

    def export(self, module: PtychoPINNModule, data: Fly64DataModule, trainer: L.Trainer,
               best: Any) -> dict[str, Any]:
        """Write the bundle with the best weights (lowest monitored loss), else the final ones."""
        if best.best_model_path and Path(best.best_model_path).is_file():
            module.load_state_dict(load_best_state_dict(best.best_model_path, self.ckpt_dir))
        cfg = self.config
        provenance = bundle_provenance(cfg, dose=data.info.meta.get("dose"), epochs_completed=trainer.current_epoch,
                                       monitor=self.monitor(data), best_score=best.best_model_score)
        return save_bundle(module.model.cpu(), self.job_dir / BUNDLE_NAME, config=cfg.json_config(),
                           extra=provenance)

    def result(self, data: Fly64DataModule, trainer: L.Trainer, best: Any, logger: Any, bundle: dict[str, Any],
               resume_from: str | None, duration_s: float) -> TrainResult:
        last = self.ckpt_dir / LAST_NAME
        log_path = None
        if logger:
            log_dir = Path(logger.log_dir)
            log_path = log_dir / "metrics.csv" if self.config.logger == "csv" else log_dir
        return TrainResult(
            final_loss=finite(trainer.callback_metrics.get("train_loss")),
            best_loss=finite(best.best_model_score),
            monitor=self.monitor(data),
            epochs_completed=int(trainer.current_epoch),
            global_step=int(trainer.global_step),
            resumed_from=job_relative(resume_from, self.job_dir),
            checkpoint_path=job_relative(last if last.is_file() else None, self.job_dir),
            best_checkpoint_path=job_relative(best.best_model_path or None, self.job_dir),
            bundle_path=BUNDLE_NAME,
            bundle_sha256=bundle["sha256"],
            bundle_size_bytes=bundle["size_bytes"],
            log_path=job_relative(log_path, self.job_dir),
            intensity_scale=data.info.intensity_scale,
            n_patterns=data.info.n,
            n_groups=len(data.groups),
            n_train_groups=len(data.train_set) if data.train_set is not None else 0,
            n_val_groups=len(data.val_set) if data.val_set is not None else 0,
            duration_s=round(duration_s, 3),
            stop_reason="max_time" if self.deadline.reached else None,
        )


class DeadlineReached(Exception):  # noqa: N818 - a stop, caught by TrainingJob.fit
    """The job's ``--max-time`` has run out (raised between batches)."""


class JobDeadline(L.Callback):
    """Stops training and validation once the job's wall-clock deadline has passed.

    Checked before every training and validation batch: raising there ends ``fit`` at
    once, so the epoch in progress is neither validated nor checkpointed nor counted,
    and ``last.ckpt`` stays the last finished epoch's (a rerun resumes from it).
    """

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline
        self.reached = False

    def _check(self) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.reached = True
            raise DeadlineReached

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._check()

    def on_validation_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int,
                                  dataloader_idx: int = 0) -> None:
        self._check()


class _DropTips(logging.Filter):
    """Drop Lightning's product advertisements ("💡 Tip: ...") from a job's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith("💡")


@contextlib.contextmanager
def _without_lightning_tips() -> Iterator[None]:
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    tip_filter = _DropTips()
    log.addFilter(tip_filter)
    try:
        yield
    finally:
        log.removeFilter(tip_filter)

