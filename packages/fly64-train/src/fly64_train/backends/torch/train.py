"""One training job, end to end: validate data, train with Lightning, write the bundle.

:func:`train_job` is what the study runner calls per (dose, view, gridsize).
Job directory layout::

    <job_dir>/checkpoints/last.ckpt      resumed from when present
    <job_dir>/checkpoints/best-*.ckpt    lowest monitored loss
    <job_dir>/logs/version_<k>/metrics.csv   (csv logger; tensorboard events likewise)
    <job_dir>/wts.h5.zip                 the bundle (best weights)
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from fly64_train.training.config import TrainConfig
from fly64_train.training.model_config import ModelConfig


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


def _make_logger(cfg: TrainConfig, job_dir: Path) -> Any:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    if cfg.logger == "csv":
        return CSVLogger(save_dir=str(job_dir), name="logs")
    if cfg.logger == "tensorboard":
        return TensorBoardLogger(save_dir=str(job_dir), name="logs", default_hp_metric=False)
    return False


def train_job(config: TrainConfig | dict[str, Any], callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Train one PtychoPINN job and write its bundle.

    Parameters
    ----------
    config : TrainConfig or dict
    callbacks : list, optional
        Extra Lightning callbacks (e.g. for monitoring).

    Returns
    -------
    dict
        ``status`` ("completed"), ``final_loss`` (last epoch's train loss),
        ``best_loss``, ``monitor``, ``epochs_completed``, ``global_step``,
        ``resumed_from``, paths relative to ``job_dir`` (``checkpoint_path``,
        ``best_checkpoint_path``, ``bundle_path``, ``log_path``),
        ``bundle_sha256``, ``bundle_size_bytes``, ``intensity_scale``,
        ``n_groups``, ``n_train_groups``, ``n_val_groups`` and ``duration_s``.

    Raises
    ------
    fly64_data.contract.ContractError
        If the dataset fails DATA-001 (before any training).
    """
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from fly64_data.contract import sha256_file
    from fly64_train.backends.torch.bundle import BUNDLE_NAME, save_bundle
    from fly64_train.backends.torch.datamodule import Fly64DataModule
    from fly64_train.backends.torch.lightning_module import PtychoPINNModule

    cfg = TrainConfig.from_dict(config) if isinstance(config, dict) else config
    cfg.check()
    started = time.monotonic()
    job_dir = Path(cfg.job_dir)

    # Validation happens here, before any folder, logger or Trainer exists.
    dm = Fly64DataModule(cfg.train_path, cfg.gridsize, cfg.neighbor_count, cfg.n_groups, cfg.grouping_seed,
                         cfg.groups_per_step, cfg.val_fraction, cfg.num_workers, cfg.seed)
    info = dm.info
    model_cfg = ModelConfig(**{**cfg.model.to_dict(), "patch_size": info.patch_size, "gridsize": cfg.gridsize})
    model_cfg.check()
    monitor = "val_loss" if dm.has_validation else "train_loss"

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module = PtychoPINNModule(model_cfg.to_dict(), info.probe, info.intensity_scale, lr=cfg.lr,
                              plateau_factor=cfg.plateau_factor, plateau_patience=cfg.plateau_patience,
                              monitor=monitor, count_split=cfg.count_split)

    ckpt_dir = job_dir / "checkpoints"
    checkpoint = ModelCheckpoint(dirpath=str(ckpt_dir), filename="best-{epoch:03d}", monitor=monitor,
                                 mode="min", save_top_k=1, save_last=True)
    last = ckpt_dir / "last.ckpt"
    resume_from = str(last) if cfg.resume and last.is_file() else None
    progress = sys.stderr.isatty() if cfg.progress_bar is None else cfg.progress_bar
    logger = _make_logger(cfg, job_dir)
    with _without_lightning_tips():
        trainer = L.Trainer(
            accelerator=cfg.accelerator, devices=cfg.devices, strategy=cfg.strategy, precision=cfg.precision,
            deterministic=cfg.deterministic, max_epochs=cfg.max_epochs, max_time=cfg.max_time,
            logger=logger, callbacks=[checkpoint, *(callbacks or [])], enable_progress_bar=progress,
            enable_model_summary=progress, default_root_dir=str(job_dir), log_every_n_steps=1,
            limit_train_batches=cfg.limit_train_batches, num_sanity_val_steps=0,
        )
    with warnings.catch_warnings():
        # Lightning 2.6 calls a torch pytree API that torch 2.13 deprecates; nothing for a user to act on.
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
        trainer.fit(module, datamodule=dm, ckpt_path=resume_from)

    # Export the best weights (lowest monitored loss), falling back to the final ones.
    best_path = checkpoint.best_model_path
    if best_path and Path(best_path).is_file():
        # Our own Lightning checkpoint (it carries loop and optimizer state, not just tensors);
        # only the published bundle is held to weights_only loading.
        state = torch.load(best_path, map_location="cpu", weights_only=False)["state_dict"]
        module.load_state_dict(state)
    final_loss = trainer.callback_metrics.get("train_loss")
    best_score = checkpoint.best_model_score
    provenance = {
        "train_path": str(cfg.train_path), "test_path": cfg.test_path,
        "train_sha256": sha256_file(cfg.train_path), "dose": info.meta.get("dose"),
        "epochs_completed": int(trainer.current_epoch), "monitor": monitor,
        "best_score": None if best_score is None else float(best_score),
    }
    bundle = save_bundle(module.model.cpu(), job_dir / BUNDLE_NAME, config=_json_config(cfg), extra=provenance)

    log_path = None
    if logger:
        log_dir = Path(logger.log_dir)
        log_path = log_dir / "metrics.csv" if cfg.logger == "csv" else log_dir
    return {
        "status": "completed",
        "final_loss": _finite(final_loss),
        "best_loss": _finite(best_score),
        "monitor": monitor,
        "epochs_completed": int(trainer.current_epoch),
        "global_step": int(trainer.global_step),
        "resumed_from": _rel(resume_from, job_dir),
        "checkpoint_path": _rel(last if last.is_file() else None, job_dir),
        "best_checkpoint_path": _rel(best_path or None, job_dir),
        "bundle_path": BUNDLE_NAME,
        "bundle_sha256": bundle["sha256"],
        "bundle_size_bytes": bundle["size_bytes"],
        "log_path": _rel(log_path, job_dir),
        "intensity_scale": info.intensity_scale,
        "n_patterns": info.n,
        "n_groups": len(dm.groups),
        "n_train_groups": len(dm.train_set) if dm.train_set is not None else 0,
        "n_val_groups": len(dm.val_set) if dm.val_set is not None else 0,
        "duration_s": round(time.monotonic() - started, 3),
    }


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _rel(path: str | os.PathLike | None, root: Path) -> str | None:
    if not path:
        return None
    return os.path.relpath(Path(path), root).replace(os.sep, "/")


def _json_config(cfg: TrainConfig) -> dict[str, Any]:
    # job_dir is where the bundle sits, not a property of the model: leaving it out keeps
    # bundles of identical runs byte-identical and free of absolute paths.
    return {k: v for k, v in cfg.to_dict().items()
            if k != "job_dir" and (v is None or isinstance(v, (str, int, float, bool, dict)))}
