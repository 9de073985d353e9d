"""The Phase E job matrix: one job per dose x view, and which data each job reads.

=========  ========  =============================================
view       gridsize  training / test data
=========  ========  =============================================
baseline   1         Phase C ``dose_<int>/patched_{train,test}.npz``
dense      2         Phase D ``dose_<int>/dense/dense_{train,test}.npz``
sparse     2         Phase D ``dose_<int>/sparse/sparse_{train,test}.npz``
<v>_matched  1 or 2  Phase D equal-positions controls (gridsize of ``matched_from``)
=========  ========  =============================================

With several training seeds every cell is trained once per seed; such jobs go to
``dose_<int>/<view>/gs<g>/seed_<s>/`` (one seed keeps the plain layout).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from fly64_data.design import StudyDesign, dose_dirname
from fly64_manifest import OverlapManifest, SkippedView

#: The view trained on Phase C data; the others are the design's overlap views (Phase D).
BASELINE = "baseline"


def study_views(design: StudyDesign) -> tuple[str, ...]:
    """Every view of the study in report order: the baseline, then the design's overlap views."""
    return (BASELINE, *design.overlap_views)


def view_gridsize(view: str, design: StudyDesign) -> int:
    """Baseline jobs train single patterns (the smallest gridsize), overlap views groups (the largest)."""
    return min(design.gridsizes) if view == BASELINE else max(design.gridsizes)


def matched_gridsize(matched_from: str, design: StudyDesign) -> int:
    """An equal-positions control trains like the view it was thinned from (``baseline``: gs1)."""
    return view_gridsize(BASELINE if matched_from == BASELINE else matched_from, design)


@dataclass(frozen=True)
class Job:
    """One cell of the matrix (one replicate of it when ``seed`` is set)."""

    dose: float
    view: str
    gridsize: int
    seed: int | None = None
    """The training seed of a replicate; ``None`` for the one-seed layout (no ``seed_<s>`` folder)."""

    @property
    def key(self) -> tuple[float, str, int, int | None]:
        return (float(self.dose), self.view, int(self.gridsize), self.seed)

    @property
    def job_dir(self) -> str:
        """Relative to the artifact root."""
        base = f"{dose_dirname(self.dose)}/{self.view}/gs{self.gridsize}"
        return base if self.seed is None else f"{base}/seed_{self.seed}"

    @property
    def data_root(self) -> str:
        """Which root the data paths are relative to (a training_manifest field)."""
        return "phase_c_root" if self.view == BASELINE else "phase_d_root"

    def data_paths(self) -> tuple[str, str]:
        """Train and test NPZ, relative to :attr:`data_root`."""
        base = dose_dirname(self.dose)
        if self.view == BASELINE:
            return f"{base}/patched_train.npz", f"{base}/patched_test.npz"
        return f"{base}/{self.view}/{self.view}_train.npz", f"{base}/{self.view}/{self.view}_test.npz"

    def label(self) -> str:
        seed = "" if self.seed is None else f" seed {self.seed}"
        return f"dose {self.dose:g} {self.view} gs{self.gridsize}{seed}"


def matched_views(overlap: OverlapManifest | None) -> dict[str, str]:
    """Equal-positions controls Phase D wrote or skipped: view name -> ``matched_from``, in manifest order."""
    found: dict[str, str] = {}
    for entry in overlap.views if overlap is not None else ():
        if entry.matched_from is not None:
            found.setdefault(entry.view, entry.matched_from)
    return found


def build_matrix(design: StudyDesign, overlap: OverlapManifest | None = None,
                 seeds: Sequence[int] | None = None) -> list[Job]:
    """Every job of the study: per dose baseline (gs1), dense and sparse (gs2), then Phase D's controls.

    ``seeds``: one job per cell and seed when more than one is given; with none or one
    the jobs carry no seed (the plain folder layout, the seed is the training config's).
    """
    controls = matched_views(overlap)
    cells = [Job(float(dose), view, view_gridsize(view, design))
             for dose in design.dose_list for view in study_views(design)]
    cells += [Job(float(dose), view, matched_gridsize(source, design))
              for dose in design.dose_list for view, source in controls.items()]
    cells.sort(key=lambda job: float(job.dose))  # stable: per dose, the views in report order
    if seeds is None or len(seeds) < 2:
        return cells
    return [replace(job, seed=int(seed)) for job in cells for seed in seeds]


def filter_jobs(jobs: Iterable[Job], doses: Sequence[float] | None = None, views: Sequence[str] | None = None,
                gridsizes: Sequence[int] | None = None) -> list[Job]:
    """Jobs matching every given filter (filters are AND-combined; None means all)."""
    return [
        job for job in jobs
        if (doses is None or float(job.dose) in {float(d) for d in doses})
        and (views is None or job.view in views)
        and (gridsizes is None or job.gridsize in gridsizes)
    ]


@dataclass(frozen=True)
class Located:
    """A job whose train and test files exist (absolute paths)."""

    job: Job
    """The matrix cell."""
    train_path: Path
    """Training NPZ."""
    test_path: Path
    """Test NPZ."""


class MissingPhaseCError(FileNotFoundError):
    """A baseline job's Phase C file is missing: an error, not a skip."""


def locate(job: Job, phase_c_root: Path, phase_d_root: Path,
           overlap: OverlapManifest | None) -> Located | SkippedView:
    """Locate a job's data. A missing Phase D view is a skip; missing Phase C data is an error."""
    train_rel, test_rel = job.data_paths()
    if job.view == BASELINE:
        for rel in (train_rel, test_rel):
            if not (phase_c_root / rel).is_file():
                raise MissingPhaseCError(f"{phase_c_root / rel}: Phase C file not found (run `make data` first)")
        return Located(job, phase_c_root / train_rel, phase_c_root / test_rel)
    recorded = _phase_d_skip_reason(overlap, job)
    if recorded:
        return _skip(job, f"Phase D skipped this view: {recorded}")
    missing = [rel for rel in (train_rel, test_rel) if not (phase_d_root / rel).is_file()]
    if missing:
        return _skip(job, f"Phase D view not found: {phase_d_root / missing[0]}")
    return Located(job, phase_d_root / train_rel, phase_d_root / test_rel)


def _skip(job: Job, reason: str) -> SkippedView:
    return SkippedView(dose=job.dose, view=job.view, gridsize=job.gridsize, reason=reason)


def _phase_d_skip_reason(overlap: OverlapManifest | None, job: Job) -> str | None:
    """The reason Phase D recorded for skipping this view, if it did."""
    for skip in overlap.skipped_views if overlap is not None else ():
        if float(skip.dose) == float(job.dose) and skip.view == job.view:
            return skip.reason
    return None
