"""What a cell was trained on, read from the Phase C / Phase D manifests when the job is planned.

The report reads only the training manifest, so everything a reviewer needs to
judge a score (how many positions, how much the footprints really overlap, how
the spacing was chosen, whether the view is an equal-positions control) is
recorded in the job's entry as its ``context``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fly64_manifest import ManifestError, OverlapManifest, RunManifest
from fly64_train.studies.matrix import BASELINE, Job


@dataclass(frozen=True)
class JobContext:
    """The data side of one cell (``None``: the producing manifest records nothing)."""

    train_positions: int | None = None
    """Scan positions in the training file."""
    test_positions: int | None = None
    """Scan positions in the test file."""
    overlap_fraction_target: float | None = None
    """Nominal overlap f of the view (``None`` for baseline and ``baseline_matched``)."""
    spacing_basis: str | None = None
    """``patch`` (S = (1 - f) N) or ``probe`` (S = (1 - f) D); ``None`` without a spacing rule."""
    nn_overlap: float | None = None
    """Phase D's measured mean nearest-neighbour footprint overlap of the training split."""
    group_overlap: float | None = None
    """Phase D's measured mean group overlap of the training split."""
    probe_diameter_px: float | None = None
    """The measured probe diameter the overlaps are computed with."""
    matched_to: str | None = None
    """Equal-positions control: the view whose position count it has."""
    matched_from: str | None = None
    """Equal-positions control: the view it was thinned from."""

    def check(self) -> None:
        for name in ("train_positions", "test_positions"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.spacing_basis not in (None, "patch", "probe"):
            raise ValueError(f"spacing_basis must be patch or probe, got {self.spacing_basis!r}")

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> JobContext:
        return cls(**{k: doc.get(k) for k in cls.__dataclass_fields__})


def job_context(job: Job, run: RunManifest | None, overlap: OverlapManifest | None) -> JobContext:
    """The context of ``job`` from the manifests that describe its data (empty where they are absent)."""
    if job.view == BASELINE:
        try:
            dose = run.dose(job.dose) if run is not None else None
        except ManifestError:
            dose = None
        if dose is None:
            return JobContext()
        nn_overlap, diameter = baseline_nn_overlap(dose.train.path)
        return JobContext(train_positions=dose.train.n_positions, test_positions=dose.test.n_positions,
                          nn_overlap=nn_overlap, probe_diameter_px=diameter)
    try:
        view = overlap.view(job.dose, job.view) if overlap is not None else None
    except ManifestError:
        view = None
    if view is None:
        return JobContext()
    raw = view.raw
    measured = raw.get("measured_overlap") or {}
    train = measured.get("train") or {}
    counts = raw.get("counts") or {}
    return JobContext(
        train_positions=_positions(view.train, counts.get("train")),
        test_positions=_positions(view.test, counts.get("test")),
        overlap_fraction_target=raw.get("overlap_fraction_target"), spacing_basis=view.spacing_basis,
        nn_overlap=train.get("nearest_neighbour_mean"), group_overlap=train.get("group_based_mean"),
        probe_diameter_px=measured.get("probe_diameter_px"),
        matched_to=view.matched_to, matched_from=view.matched_from,
    )


def baseline_nn_overlap(train_path: Path) -> tuple[float | None, float | None]:
    """Mean nearest-neighbour footprint overlap of a Phase C training split, as Phase D measures its views.

    Phase C records no overlap, so the baseline's is measured here with Phase D's
    own definitions (encircled-energy probe diameter, disc overlap of nearest
    neighbours); the group overlap, a sampled quantity, is left to Phase D.
    ``(None, None)`` when the file cannot be read (its job reports why).
    """
    from fly64_data.contract import ContractError
    from fly64_overlap.metrics import disc_overlap_fraction, nearest_neighbour_distances
    from fly64_overlap.probe import measure_probe_diameter
    from fly64_train.data.npz_layout import npz_members

    try:
        readers = npz_members(train_path)
        points = np.stack([readers["xcoords"].read_all(), readers["ycoords"].read_all()], axis=1)
        diameter = measure_probe_diameter(readers["probeGuess"].read_all()).value_px
    except (ContractError, KeyError, ValueError):
        return None, None
    distances = nearest_neighbour_distances(points)
    if distances.size == 0:
        return None, round(float(diameter), 3)
    return round(float(disc_overlap_fraction(distances, diameter).mean()), 6), round(float(diameter), 3)


def _positions(record: Any, count: Mapping[str, Any] | None) -> int | None:
    if record is not None and record.n_positions is not None:
        return int(record.n_positions)
    return int(count["kept"]) if count and "kept" in count else None
