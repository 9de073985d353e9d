"""One training job with the TensorFlow backend: validate data, ``model.fit``, write the bundle.

:func:`train_job` takes the same :class:`~fly64_train.training.config.TrainConfig` as the
torch backend's and returns the same :class:`~fly64_train.training.result.TrainResult`
(``backend="tensorflow"``). Job directory layout::

    <job_dir>/checkpoints/last.weights.h5     every epoch: CNN, probe, scale and Adam's state
    <job_dir>/checkpoints/last.json           epoch, losses, plateau state; written last
    <job_dir>/checkpoints/best.weights.h5     lowest monitored loss
    <job_dir>/checkpoints/resume_settings.json  data sha256 and settings a resume must match
    <job_dir>/logs/metrics.csv                CSV log, rewritten by rename each epoch (kept on resume)
    <job_dir>/logs/tensorboard/               with logger="tensorboard"
    <job_dir>/wts.h5.zip                      the bundle (best weights)
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

from fly64_manifest import ManifestError, read_json, write_json
from fly64_train.backends.tensorflow.bundle import BUNDLE_NAME, save_bundle
from fly64_train.backends.tensorflow.checkpoint import AtomicCSVLogger, AtomicModelCheckpoint
from fly64_train.backends.tensorflow.data import EpochClock, group_batches
from fly64_train.backends.tensorflow.model import PtychoPINN
from fly64_train.backends.tensorflow.weights import WeightsError, load_weights, save_weights
from fly64_train.training.config import TrainConfig
from fly64_train.training.job_folder import CHECKPOINTS, check_resume, prepare_job_folder, record_resume_settings
from fly64_train.training.model_config import ModelConfig
from fly64_train.training.option import max_time_seconds
from fly64_train.training.provenance import bundle_provenance, finite, job_relative
from fly64_train.training.result import TrainResult
from fly64_train.training.stops import NothingTrained

if TYPE_CHECKING:
    from fly64_data.grouping import Groups
    from fly64_train.data.reader import DatasetInfo

LAST_WEIGHTS = "last.weights.h5"
LAST_STATE = "last.json"
BEST_WEIGHTS = "best.weights.h5"


class DeadlineReached(Exception):  # noqa: N818 - a stop, caught around model.fit
    """The job's ``--max-time`` has run out (raised between batches)."""


class WallTimeCap(keras.callbacks.Callback):
    """Ends ``fit`` once the job's deadline has passed, checked before every training and validation batch.

    Raising (not ``stop_training``, which lets Keras validate the cut epoch and call it finished) drops
    the epoch in progress: it is not validated, not recorded in ``last.json`` and not counted, as
    with the torch backend's ``JobDeadline``.
    """

    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline
        self.reached = False

    def _check(self) -> None:
        if time.monotonic() >= self.deadline:
            self.reached = True
            raise DeadlineReached

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._check()

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._check()


class ResumableReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau whose counters survive a resume (Keras resets them at train begin)."""

    def __init__(self, state: dict[str, float] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.restored = state

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        if self.restored:
            self.best, self.wait = self.restored["best"], int(self.restored["wait"])
            self.cooldown_counter = int(self.restored["cooldown_counter"])

    def state(self) -> dict[str, float]:
        return {"best": float(self.best), "wait": int(self.wait), "cooldown_counter": int(self.cooldown_counter)}


class LastCheckpoint(keras.callbacks.Callback):
    """Every epoch: weights, optimizer state, then the JSON that makes them a checkpoint.

    The JSON is written last (atomically), so a crash mid-save leaves the previous
    epoch's record, which resume then trusts.
    """

    def __init__(self, ckpt_dir: Path, plateau: ResumableReduceLROnPlateau, best: keras.callbacks.ModelCheckpoint,
                 monitor: str) -> None:
        super().__init__()
        self.ckpt_dir, self.plateau, self.best, self.monitor = ckpt_dir, plateau, best, monitor
        self.record: dict[str, Any] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        save_weights(self.model, self.ckpt_dir / LAST_WEIGHTS)  # with Adam's state (optimizer/)
        best = self.best.best
        self.record = {"epoch": epoch, "epochs_completed": epoch + 1,
                       "global_step": int(self.model.optimizer.iterations),
                       "loss": finite(logs.get("loss")), "monitor": self.monitor,
                       "best_loss": finite(best), "plateau": self.plateau.state()}
        write_json(self.ckpt_dir / LAST_STATE, self.record)


def _read_resume_state(ckpt_dir: Path) -> dict[str, Any] | None:
    state_path = ckpt_dir / LAST_STATE
    if not (state_path.is_file() and (ckpt_dir / LAST_WEIGHTS).is_file()):
        return None
    try:
        state = read_json(state_path)  # the one strict parser: no NaN best_loss, no 100,000-deep nesting
    except ManifestError as exc:
        raise WeightsError(f"{exc}; use --no-resume to start over") from None
    problem = _resume_state_problem(state)
    if problem:
        raise WeightsError(f"{state_path}: not a checkpoint record of this job ({problem}); use --no-resume "
                           "to start over")
    return state


def _resume_state_problem(state: Any) -> str | None:
    """What is wrong with a ``last.json`` record (types and ranges of every key resume uses), or ``None``.

    Our own state file is checked like any input: ``epochs_completed`` -5 reached Keras as a negative
    initial epoch (a graph-execution traceback), and a stale or hostile ``best_loss`` would decide which
    epoch's weights the bundle exports.
    """
    if not isinstance(state, dict):
        return "not a JSON object"

    def whole(key: str, value: Any, high: int) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= high
        return None if ok else f"{key} must be a whole number in [0, {high}], got {value!r}"[:160]

    def number(key: str, value: Any, optional: bool) -> str | None:
        if value is None and optional:
            return None
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return None if ok else f"{key} must be a finite number{' or null' if optional else ''}, got {value!r}"[:160]

    plateau = state.get("plateau")
    if not isinstance(plateau, dict):
        return f"plateau must be an object, got {plateau!r}"[:160]
    checks = (whole("epochs_completed", state.get("epochs_completed"), 10**6),
              whole("global_step", state.get("global_step", 0), 10**12),
              number("best_loss", state.get("best_loss"), True), number("loss", state.get("loss"), True),
              number("plateau.best", plateau.get("best"), False),
              whole("plateau.wait", plateau.get("wait"), 10**6),
              whole("plateau.cooldown_counter", plateau.get("cooldown_counter"), 10**6))
    return next((problem for problem in checks if problem), None)


def _check_backend_config(cfg: TrainConfig) -> None:
    # The torch options are Lightning's: ignored here (TensorFlow places the job itself), except the two
    # that would change what is trained, which the bundle would otherwise record and not honour.
    if cfg.torch.precision != "32-true":
        raise ValueError("the tensorflow backend trains in float32 only (precision '32-true'), "
                         f"got {cfg.torch.precision!r}")
    if cfg.torch.strategy != "auto":
        raise ValueError(f"the tensorflow backend has no strategy option, got {cfg.torch.strategy!r}")


def train_job(cfg: TrainConfig, callbacks: list[keras.callbacks.Callback] | None = None) -> TrainResult:
    """Train one PtychoPINN job with Keras and write its bundle.

    Raises
    ------
    fly64_data.contract.ContractError
        If the dataset fails DATA-001 (before any folder is written).
    WeightsError
        If the job's checkpoint record or weights do not fit (resume).
    """
    return TrainingJob(cfg, callbacks).run()


@dataclass(frozen=True)
class JobData:
    """The validated, grouped training file, split into training and validation groups."""

    info: DatasetInfo
    """The validated file (patterns read lazily)."""
    groups: Groups
    """Every group drawn from it."""
    train_groups: Groups
    """The groups trained on."""
    val_groups: Groups | None
    """The groups validated on (``None`` without a validation split)."""

    @property
    def has_validation(self) -> bool:
        return self.val_groups is not None


class TrainingJob:
    """One job's build steps, in the order :meth:`run` takes them: the same steps, by the same names, as
    the torch backend's :class:`fly64_train.backends.torch.train.TrainingJob` (``build_trainer`` is
    ``build_callbacks`` here: Keras has no trainer object)."""

    def __init__(self, config: TrainConfig, callbacks: list[keras.callbacks.Callback] | None = None) -> None:
        config.check()
        _check_backend_config(config)
        self.config = config
        self.extra_callbacks = list(callbacks or [])
        self.job_dir = Path(config.job_dir)
        self.ckpt_dir = self.job_dir / CHECKPOINTS
        # --max-time bounds the job from here: data preparation, training and validation all count.
        self.started = time.monotonic()
        cap = max_time_seconds(config.max_time)
        self.deadline = WallTimeCap(self.started + cap) if cap is not None else None
        self.log_path: Path | None = None

    def run(self) -> TrainResult:
        data = self.build_data()  # validation happens here, before any folder, logger or model exists
        model = self.build_model(data)
        state = self.resume_checkpoint(model)
        callbacks, last = self.build_callbacks(data, state)
        history = self.fit(model, data, state, callbacks)
        record = last.record or state or {}
        stopped = self.deadline is not None and self.deadline.reached
        if stopped and not int(record.get("epochs_completed", 0)):
            raise NothingTrained(f"--max-time {self.config.max_time} ran out before the first epoch finished; "
                                 "nothing exported, rerun with a larger --max-time")
        bundle = self.export(model, data, record)
        return self.result(data, history, record, state, bundle, time.monotonic() - self.started)

    # -- build steps -------------------------------------------------------------------------------

    def build_data(self) -> JobData:
        """The validated, grouped training file."""
        from fly64_data.contract import ContractError
        from fly64_data.grouping import make_groups
        from fly64_train.data.grouping import split_groups
        from fly64_train.data.reader import open_dataset

        cfg = self.config
        info = open_dataset(cfg.train_path, cfg.gridsize, cfg.neighbor_count)
        try:
            groups = make_groups(info.ycoords, info.xcoords, cfg.gridsize, cfg.neighbor_count, cfg.n_groups,
                                 cfg.grouping_seed)
        except ValueError as exc:
            raise ContractError(f"{cfg.train_path}: {exc}") from None
        train_groups, val_groups = split_groups(groups, cfg.val_fraction, cfg.seed)
        return JobData(info, groups, train_groups, val_groups)

    def monitor(self, data: JobData) -> str:
        """Keras's name of the monitored loss (``loss`` is the training loss)."""
        return "val_loss" if data.has_validation else "loss"

    def reported_monitor(self, data: JobData) -> str:
        """The study's name of it, as the torch backend reports it."""
        monitor = self.monitor(data)
        return "train_loss" if monitor == "loss" else monitor

    def build_model(self, data: JobData) -> PtychoPINN:
        cfg, info = self.config, data.info
        model_cfg = ModelConfig(**{**cfg.model.to_dict(), "patch_size": info.patch_size, "gridsize": cfg.gridsize})
        model_cfg.check()
        keras.utils.set_random_seed(cfg.seed)
        if cfg.deterministic:
            # Process-wide and irreversible in TensorFlow: a deterministic job makes its process deterministic.
            tf.config.experimental.enable_op_determinism()
        model = PtychoPINN(model_cfg, info.probe, info.intensity_scale, cfg.count_split, split_seed=cfg.seed)
        model.compile(optimizer=keras.optimizers.Adam(cfg.lr, epsilon=1e-8), jit_compile=False)
        return model

    def resume_checkpoint(self, model: PtychoPINN) -> dict[str, Any] | None:
        """The checked ``last.json`` record when resuming (its weights and Adam state loaded into ``model``).

        Also the first step that touches the job folder: no link at ``checkpoints/`` or ``logs/``, and a
        checkpoint of other data or settings is refused (ResumeMismatch); a fresh start records them.
        """
        prepare_job_folder(self.job_dir)
        state = _read_resume_state(self.ckpt_dir) if check_resume(self.config) else None
        if state is None:
            record_resume_settings(self.config)
            return None
        # Built first, so that loading restores Adam's moments, step count and learning rate too.
        model.optimizer.build(model.cnn.trainable_variables)
        load_weights(model, self.ckpt_dir / LAST_WEIGHTS)
        return state

    def build_logger(self, resumed: bool) -> keras.callbacks.Callback | None:
        cfg = self.config
        if cfg.logger == "csv":
            self.log_path = self.job_dir / "logs" / "metrics.csv"
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            return AtomicCSVLogger(self.log_path, append=resumed)
        if cfg.logger == "tensorboard":
            self.log_path = self.job_dir / "logs" / "tensorboard"
            return keras.callbacks.TensorBoard(log_dir=str(self.log_path), write_graph=False)
        return None

    def build_callbacks(self, data: JobData,
                        state: dict[str, Any] | None) -> tuple[list[keras.callbacks.Callback], LastCheckpoint]:
        """The epoch clock, plateau schedule, best and last checkpoints, logger and deadline, in that order."""
        cfg, monitor = self.config, self.monitor(data)
        self.clock = EpochClock()
        best = AtomicModelCheckpoint(
            str(self.ckpt_dir / BEST_WEIGHTS), monitor=monitor, mode="min", save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=state["best_loss"] if state and state.get("best_loss") is not None else None)
        # Keras lowers the rate at the patience-th epoch without improvement, torch after it (num_bad_epochs >
        # patience): + 1 gives --plateau-patience torch's meaning on both backends.
        plateau = ResumableReduceLROnPlateau(state["plateau"] if state else None, monitor=monitor, mode="min",
                                             factor=cfg.plateau_factor, patience=cfg.plateau_patience + 1,
                                             min_lr=0.0)
        last = LastCheckpoint(self.ckpt_dir, plateau, best, monitor)
        callbacks: list[keras.callbacks.Callback] = [self.clock, plateau, best, last]
        logger = self.build_logger(state is not None)
        if logger is not None:
            callbacks.append(logger)
        if self.deadline is not None:
            callbacks.append(self.deadline)
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        return [*callbacks, *self.extra_callbacks], last

    def fit(self, model: PtychoPINN, data: JobData, state: dict[str, Any] | None,
            callbacks: list[keras.callbacks.Callback]) -> Any:
        """``model.fit`` from the resumed epoch; the History, or ``None`` when no epoch was left to train."""
        cfg = self.config
        initial_epoch = int(state["epochs_completed"]) if state else 0
        if initial_epoch >= cfg.max_epochs:
            return None
        batches = cfg.groups_per_step
        limit = cfg.limit_train_batches
        n_train_batches = math.ceil(len(data.train_groups) / batches)
        max_batches = None if limit is None else (int(limit) if isinstance(limit, int) else
                                                  max(1, math.ceil(float(limit) * n_train_batches)))
        train_data = group_batches(data.info.diffraction, data.train_groups, batches, cfg.seed, self.clock,
                                   max_batches)
        val_data = (group_batches(data.info.diffraction, data.val_groups, batches) if data.val_groups is not None
                    else None)
        progress = sys.stdout.isatty() if cfg.progress_bar is None else cfg.progress_bar
        try:
            return model.fit(train_data, validation_data=val_data, epochs=cfg.max_epochs,
                             initial_epoch=initial_epoch, callbacks=callbacks, verbose=1 if progress else 0,
                             shuffle=False)  # group_batches shuffles per epoch
        except DeadlineReached:
            return None  # the finished epochs' checkpoints and record stand; the cut epoch is dropped

    def export(self, model: PtychoPINN, data: JobData, record: dict[str, Any]) -> dict[str, Any]:
        """Write the bundle with the best weights (lowest monitored loss), else the final ones."""
        best_path = self.ckpt_dir / BEST_WEIGHTS
        if best_path.is_file():
            load_weights(model, best_path)
        cfg = self.config
        provenance = bundle_provenance(cfg, dose=data.info.meta.get("dose"),
                                       epochs_completed=int(record.get("epochs_completed", 0)),
                                       monitor=self.reported_monitor(data), best_score=record.get("best_loss"))
        return save_bundle(model, self.job_dir / BUNDLE_NAME, config=cfg.json_config(), extra=provenance)

    def result(self, data: JobData, history: Any, record: dict[str, Any], state: dict[str, Any] | None,
               bundle: dict[str, Any], duration_s: float) -> TrainResult:
        last_weights, best_path = self.ckpt_dir / LAST_WEIGHTS, self.ckpt_dir / BEST_WEIGHTS
        stopped = self.deadline is not None and self.deadline.reached
        return TrainResult(
            final_loss=finite(history.history["loss"][-1]) if history and history.history.get("loss")
            else record.get("loss"),
            best_loss=record.get("best_loss"),
            monitor=self.reported_monitor(data),
            epochs_completed=int(record.get("epochs_completed", 0)),
            # From the record: loading the best weights also restored that epoch's optimizer step count.
            global_step=int(record.get("global_step", 0)),
            resumed_from=f"checkpoints/{LAST_WEIGHTS}" if state else None,
            checkpoint_path=f"checkpoints/{LAST_WEIGHTS}" if last_weights.is_file() else None,
            best_checkpoint_path=f"checkpoints/{BEST_WEIGHTS}" if best_path.is_file() else None,
            bundle_path=BUNDLE_NAME,
            bundle_sha256=bundle["sha256"],
            bundle_size_bytes=bundle["size_bytes"],
            log_path=job_relative(self.log_path, self.job_dir),
            intensity_scale=data.info.intensity_scale,
            n_patterns=data.info.n,
            n_groups=len(data.groups),
            n_train_groups=len(data.train_groups),
            n_val_groups=len(data.val_groups) if data.val_groups is not None else 0,
            duration_s=round(duration_s, 3),
            backend="tensorflow",
            stop_reason="max_time" if stopped else None,
        )
