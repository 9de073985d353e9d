"""Phase E's PINN prediction as the iterative method's starting object ("PINN + LSQML").

A network that maps one diffraction pattern to one object patch cannot know the patch's constant
phase (no pattern depends on it), so phase structure wider than the probe is only pinned by the
overlap between patterns, which an iterative fit uses and the PINN does not (docs/study.md, "Why
LSQML wins phase at 1e5"). Starting the fit from the PINN's stitched prediction joins the two: the
network's fast, dose-robust estimate, then the overlap constraint.

The start is made from exactly the photons the fit sees: all of them for the scored reconstruction,
half A for the information score's fit of half A (the PINN predicts from half A too), so half B
never reaches the reconstruction it scores. The bundle is the one Phase E's training manifest records
for the same cell (dose, view, gridsize, seed), checked against its recorded sha256.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from fly64_manifest import TrainingManifest
    from fly64_train.data.reader import DatasetInfo
    from fly64_train.studies.matrix import Job

#: What the manifest's ``engine_options.object_start`` says of a fit started from the PINN.
OBJECT_START = "pinn: Phase E's stitched prediction of the same photons; flat amplitude where no probe reached"


@dataclass(frozen=True)
class PinnStart:
    """Where one job's starting object comes from: a Phase E bundle of the same cell."""

    bundle: Path
    """The Phase E job's ``wts.h5.zip``."""
    sha256: str
    """The bundle's digest as Phase E's training manifest recorded it; other bytes are refused."""
    device: str = "cpu"
    """Where the network predicts (the fly64-train device names; ``auto``: a GPU when present)."""

    def check(self) -> None:
        """Refuse a digest that is not 64 hex digits (the bundle itself is checked when read)."""
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise ValueError(f"{self.bundle}: recorded sha256 is not 64 lower-case hex digits: {self.sha256!r}")


@dataclass(frozen=True)
class StartObjects:
    """The starting objects of one job's two fits, and what making them cost."""

    full: np.ndarray
    """Complex object from all of each pattern's photons (the scored fit starts here)."""
    half_a: np.ndarray | None
    """Complex object from half A of each pattern's photons (the information score's fit); ``None`` if not asked."""
    predict_s: float
    """Seconds to predict and stitch ``full`` (part of the method's reconstruction time)."""


def locate_bundle(manifest: TrainingManifest, job: Job, test_path: Path) -> tuple[Path, str]:
    """The bundle and recorded digest of Phase E's successful job for ``job``'s cell in ``manifest``.

    The PINN must have been scored on ``test_path`` itself: a Phase E root made from other Phase C
    data would start the fit from a network that never saw this split's study.

    Raises
    ------
    fly64_manifest.ManifestError
        No successful job of that dose, view, gridsize and seed in the manifest, or one scored on
        another test split.
    """
    from fly64_manifest import ManifestError

    for trained in manifest.jobs:
        if (float(trained.dose), trained.view, trained.gridsize, trained.seed) == (
                float(job.dose), job.view, job.gridsize, job.seed):
            if trained.status != "success" or trained.bundle_path is None or trained.bundle_sha256 is None:
                raise ManifestError(f"{manifest.path}: the PINN of {job.label()} is {trained.status}, "
                                    "so it cannot start the iterative fit")
            if Path(trained.test_data_path).resolve() != Path(test_path).resolve():
                raise ManifestError(f"{manifest.path}: the PINN of {job.label()} was scored on "
                                    f"{trained.test_data_path}, not on {test_path}: another study's Phase E")
            return trained.bundle_path, trained.bundle_sha256
    raise ManifestError(f"{manifest.path}: no PINN of {job.label()} to start the iterative fit from")


def check_bundle(start: PinnStart) -> None:
    """The bundle is a file whose bytes are the recorded ones (before a run writes anything).

    Raises
    ------
    fly64_manifest.ManifestError
        Missing, or its sha256 differs from the training manifest's record.
    """
    from fly64_manifest import ManifestError, sha256_file

    if not Path(start.bundle).is_file():
        raise ManifestError(f"{start.bundle}: the PINN bundle the training manifest records is missing")
    digest, _ = sha256_file(start.bundle)
    if digest != start.sha256:
        raise ManifestError(f"{start.bundle}: sha256 {digest} differs from the training manifest's {start.sha256}")


def start_options(start: PinnStart) -> dict[str, str]:
    """What ``engine_options`` records of a PINN start (also for a job that failed)."""
    return {"object_start": OBJECT_START, "pinn_bundle_sha256": start.sha256}


def start_objects(start: PinnStart, info: DatasetInfo, *, half_a: bool) -> StartObjects:
    """Predict and stitch ``info``'s split with the bundle's model (and from half A when ``half_a``)."""
    from fly64_train.bundle import load_contents, read_bundle
    from fly64_train.evaluation.evaluate import EvaluationConfig, grouping_for, reconstruct
    from fly64_train.evaluation.information import half_a_prediction

    contents = read_bundle(start.bundle, expected_sha256=start.sha256)
    model = load_contents(contents, device=start.device)
    cfg = grouping_for(contents.manifest, EvaluationConfig(information=False, device=start.device))
    started = time.perf_counter()
    image, summed, _, _ = reconstruct(model, info, cfg)
    full = filled(image, summed)
    predict_s = time.perf_counter() - started
    half = None
    if half_a:
        half = filled(*half_a_prediction(model, info, neighbor_count=cfg.neighbor_count,
                                         grouping_seed=cfg.grouping_seed, batch_size=cfg.batch_size))
    return StartObjects(full=full, half_a=half, predict_s=predict_s)


def filled(image: np.ndarray, summed: np.ndarray) -> np.ndarray:
    """``image`` with the pixels no probe reached set to its mean amplitude, at its mean phase.

    The information score's cut (:func:`~fly64_train.evaluation.information.unreached_as_nan`): there the
    stitch has nothing, and a fit cannot change pixels no probe lights either, so any finite value
    serves; the mean keeps the start free of steps.
    """
    from fly64_train.evaluation.information import unreached_as_nan
    from fly64_train.evaluation.metrics import InformationScore

    reached = unreached_as_nan(image, summed)
    amplitude = float(np.nanmean(np.abs(reached))) if np.isfinite(reached).any() else 1.0
    return InformationScore.filled(reached, amplitude)
