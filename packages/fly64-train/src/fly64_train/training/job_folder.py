"""A job folder both backends train into: checked for links, and a resume checked against its settings.

Layout (both backends)::

    <job_dir>/checkpoints/      the backend's checkpoints, plus resume_settings.json (below)
    <job_dir>/logs/             the training log (CSV or TensorBoard)

:func:`prepare_job_folder` creates the folders through the one safe-path writer
(:mod:`fly64_manifest.safe_paths`): the job folder must lie inside its root (the
artifact root of a study, the folder itself for ``train-one``) and neither it nor
``checkpoints/`` nor ``logs/`` may be a symbolic link.

A checkpoint is only worth resuming if it was trained on the same data with the
same model and optimiser settings; otherwise the bundle would claim settings its
weights never saw. ``checkpoints/resume_settings.json`` records what the
checkpoint was trained with (:func:`resume_settings`); :func:`check_resume`
refuses a resume whose settings differ, and :func:`record_resume_settings` writes
the record when a job starts from scratch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fly64_manifest import (
    ManifestError,
    UnsafePathError,
    ensure_dir,
    inside_root,
    parse_json,
    read_json,
    write_json,
)
from fly64_train.training.config import TrainConfig
from fly64_train.training.digest import file_sha256
from fly64_train.training.torch_options import nest_flat_keys

CHECKPOINTS = "checkpoints"
LOGS = "logs"
#: What the job folder's checkpoint was trained with (written beside it).
RESUME_SETTINGS = "resume_settings.json"
#: Files that mean a backend left a checkpoint a resume would continue from.
CHECKPOINT_NAMES = ("last.ckpt", "last.json", "last.weights.h5")
#: Settings that may change between a run and its resume: how long, where and how verbosely
#: it runs, not what it learns. Everything else of :meth:`TrainConfig.json_config` must match
#: (``torch.precision`` included). A nested setting is named by its path.
RESUMABLE_CHANGES = frozenset({
    "max_epochs", "max_time", "resume", "torch.accelerator", "torch.devices", "torch.strategy",
    "torch.num_workers", "progress_bar", "logger", "test_path", "train_path", "limit_train_batches",
    "deterministic",
})


class ResumeMismatch(ValueError):
    """The job folder holds a checkpoint trained with other data or settings."""


def prepare_job_folder(job_dir: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Create ``job_dir`` (inside ``root``; default: the folder itself) with ``checkpoints/`` and ``logs/``.

    Raises
    ------
    fly64_manifest.UnsafePathError
        One line naming the link, or the path outside ``root``.
    """
    job = Path(job_dir)
    root = Path(root) if root is not None else job
    ensure_dir(job, root, what="job folder")
    for sub in (CHECKPOINTS, LOGS):
        inside_root(job / sub, job, what=f"job {sub} folder")
    checkpoints = job / CHECKPOINTS
    if checkpoints.is_dir():
        for entry in checkpoints.iterdir():
            # Checkpoint writers rename a temporary file onto its name; a link there to a folder
            # would have the file moved into that folder (shutil.move), outside the job.
            if entry.is_symlink() and entry.is_dir():
                raise UnsafePathError(f"{entry}: checkpoint is a symbolic link to a folder; refusing to write "
                                      "through it (remove the link)")
    return job


def resume_settings(cfg: TrainConfig) -> dict[str, Any]:
    """What a checkpoint of ``cfg`` depends on: the training data's sha256 and every learning setting."""
    digest = file_sha256(cfg.train_path)
    settings = _learning_settings(cfg.json_config())
    # Through JSON and back, so that it compares equal to the record read from disk (tuples -> lists).
    return parse_json(json.dumps({"train_sha256": digest, "settings": settings}), "resume settings")


def has_checkpoint(job_dir: str | os.PathLike) -> bool:
    """Whether a backend left a checkpoint in ``job_dir`` that a resume would continue from."""
    folder = Path(job_dir) / CHECKPOINTS
    return any(os.path.lexists(folder / name) for name in CHECKPOINT_NAMES)


def check_resume(cfg: TrainConfig) -> bool:
    """Whether ``cfg`` resumes a checkpoint; refuse one trained with other data or settings.

    Raises
    ------
    ResumeMismatch
        ``"<job_dir>: this job folder holds a checkpoint of other settings (<what>); use --no-resume"``.
    """
    if not cfg.resume or not has_checkpoint(cfg.job_dir):
        return False
    path = Path(cfg.job_dir) / CHECKPOINTS / RESUME_SETTINGS
    hint = "use --no-resume"
    if not path.is_file():
        raise ResumeMismatch(f"{cfg.job_dir}: this job folder holds a checkpoint of other settings "
                             f"(no {CHECKPOINTS}/{RESUME_SETTINGS} records them); {hint}")
    try:
        recorded = read_json(path)
    except ManifestError as exc:
        raise ResumeMismatch(f"{exc}; {hint}") from None
    if isinstance(recorded, dict) and isinstance(recorded.get("settings"), dict):
        # A record written before the torch options were nested holds them as top-level keys.
        try:
            recorded = {**recorded, "settings": _learning_settings(nest_flat_keys(recorded["settings"]))}
        except ValueError as exc:
            raise ResumeMismatch(f"{path}: {exc}; {hint}") from None
    wanted = resume_settings(cfg)
    differ = _differences(recorded, wanted)
    if differ:
        raise ResumeMismatch(f"{cfg.job_dir}: this job folder holds a checkpoint of other settings "
                             f"({'; '.join(differ[:3])}); {hint}")
    return True


def record_resume_settings(cfg: TrainConfig) -> Path:
    """Write ``checkpoints/resume_settings.json`` for a job that starts from scratch (atomic, inside the job)."""
    job = Path(cfg.job_dir)
    return write_json(job / CHECKPOINTS / RESUME_SETTINGS, resume_settings(cfg), root=job)


def _learning_settings(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``config`` without the :data:`RESUMABLE_CHANGES` (a nested one by its path)."""
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if name in RESUMABLE_CHANGES:
            continue
        if isinstance(value, dict) and any(change.startswith(f"{name}.") for change in RESUMABLE_CHANGES):
            value = _learning_settings(value, f"{name}.")
        out[key] = value
    return out


def _differences(recorded: Any, wanted: dict[str, Any]) -> list[str]:
    if not isinstance(recorded, dict) or not isinstance(recorded.get("settings"), dict):
        return ["its settings record is not an object"]
    out = []
    if recorded.get("train_sha256") != wanted["train_sha256"]:
        out.append("trained on other data: train sha256 "
                   f"{str(recorded.get('train_sha256'))[:12]}... is not {wanted['train_sha256'][:12]}...")
    out.extend(_changed(recorded["settings"], wanted["settings"], ""))
    return out


def _changed(old: dict[str, Any], new: dict[str, Any], prefix: str) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(_changed(a, b, f"{prefix}{key}."))  # name the model's own key
        elif a != b:
            out.append(f"{prefix}{key} {_short(a)} -> {_short(b)}")
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
