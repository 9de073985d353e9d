"""What one finished training job reports, the same for every backend."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainResult:
    """The outcome of :func:`fly64_train.train_job`; paths are relative to the job folder."""

    final_loss: float | None
    """Training loss of the last finished epoch (``None`` when it was not finite)."""
    best_loss: float | None
    """Lowest monitored loss; the bundle holds the weights that reached it."""
    monitor: str
    """The monitored quantity: ``val_loss`` when a validation split exists, else ``train_loss``."""
    epochs_completed: int
    """Epochs finished, counting those of earlier (resumed) attempts."""
    global_step: int
    """Optimisation steps taken, counting resumed ones."""
    resumed_from: str | None
    """The checkpoint this run resumed from, or ``None`` for a fresh start."""
    checkpoint_path: str | None
    """The last-epoch checkpoint (resume point)."""
    best_checkpoint_path: str | None
    """The best checkpoint, if one was written."""
    bundle_path: str
    """The ``wts.h5.zip`` bundle."""
    bundle_sha256: str
    """sha256 of the bundle's final bytes (64 lowercase hex)."""
    bundle_size_bytes: int
    """Size of the bundle in bytes."""
    log_path: str | None
    """CSV metrics file or TensorBoard folder, ``None`` without a logger."""
    intensity_scale: float
    """The dataset's recorded intensity scale (fixed during training)."""
    n_patterns: int
    """Diffraction patterns in the training file."""
    n_groups: int
    """Groups formed from them (gridsize**2 patterns each)."""
    n_train_groups: int
    """Groups used for optimisation."""
    n_val_groups: int
    """Groups held out for validation (model selection, learning-rate schedule)."""
    duration_s: float
    """Wall time of this call, seconds."""
    backend: str = "torch"
    """The framework that trained the model: ``torch`` or ``tensorflow``."""
    status: str = "completed"
    """Always ``completed``: a job that cannot complete raises."""
    stop_reason: str | None = None
    """``"max_time"`` when ``--max-time`` cut training short (``epochs_completed`` counts finished epochs
    only; the bundle holds the best of them); ``None`` when it ran its ``max_epochs``."""
