"""The comparison's cells: per dose x view, what each method has (its scored replicates) or why not.

Everything comes from the typed manifests of :mod:`fly64_manifest`: the training manifest's
jobs (PINN) and the iterative manifest's jobs, paired by (dose, view). A method that lacks a
cell says why in one line (skipped by Phase D, failed, a dry run, not run), never by raising.
"PINN + refine" is a third method where the PINN's evaluation refined (``job.scores.refine``);
a cell without it has no such method at all (nothing to say, so nothing is said).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fly64_compare.stats import ITERATIVE, PINN, PINN_REFINE, Summary, summarize
from fly64_manifest import IterativeJob, IterativeManifest, TrainingJob, TrainingManifest
from fly64_manifest.models import VIEWS, SkippedView, same_dose
from fly64_manifest.scores import Scores

#: A cell's state for one method.
OK, FAILED, SKIPPED, NOT_RUN = "ok", "failed", "skipped", "not run"
#: "PINN + refine" only: the cell's replicates were refined with differing (steps, lr), so no one mean.
MIXED = "mixed settings"
#: Job end states that produced no usable reconstruction and carry a one-line error; the first one a
#: cell's jobs reached names the cell (a diverged job may keep a bundle, but its scores are not a result).
UNSUCCESSFUL = ("failed", "diverged", "interrupted")


@dataclass(frozen=True)
class Replicate:
    """One scored reconstruction of a cell (one training/reconstruction seed)."""

    seed: int | None
    scores: Scores
    product: Path | None
    """The ptychodus product ``reconstruction.h5`` (absolute), where recorded."""
    product_sha256: str | None
    """Its sha256 as recorded, checked before the file is read."""
    test_data_path: Path | None = None
    """The test split reconstructed (its ``objectGuess`` is the truth)."""


@dataclass(frozen=True)
class MethodCell:
    """What one method has for one (dose, view).

    ``state`` is :data:`OK` when at least one replicate was scored; then ``notes`` say
    what happened to the others (a failed seed). Otherwise ``notes[0]`` says why the
    cell is empty.
    """

    method: str
    state: str
    replicates: tuple[Replicate, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        """The table's word for an empty cell: ``failed``, ``skipped``, ``not run``."""
        return self.state

    def summary(self, component: str, name: str) -> Summary | None:
        return summarize(r.scores.metric(component, name) for r in self.replicates)

    def floor(self, component: str, name: str) -> Summary | None:
        return summarize(r.scores.floor(component, name) for r in self.replicates)

    def time_per_1000(self) -> Summary | None:
        """Reconstruction seconds per 1,000 patterns over the replicates that recorded a time."""
        return summarize(r.scores.reconstruction.seconds_per_1000_patterns for r in self.replicates
                         if r.scores.reconstruction is not None)

    def fine_tuning_per_1000(self) -> Summary | None:
        """Of :meth:`time_per_1000`, the fine-tuning's seconds per 1,000 patterns ("PINN + refine" only)."""
        return summarize(r.scores.reconstruction.refine_s / r.scores.reconstruction.n_patterns * 1000.0
                         for r in self.replicates
                         if r.scores.reconstruction is not None and r.scores.reconstruction.refine_s is not None)

    def devices(self) -> str | None:
        """Where the timed reconstructions ran (``cuda:0 (NVIDIA H200)``; several joined by ``, ``)."""
        names = []
        for r in self.replicates:
            t = r.scores.reconstruction
            if t is not None:
                name = f"{t.device} ({t.device_name})" if t.device_name else t.device
                if name not in names:
                    names.append(name)
        return ", ".join(names) or None


@dataclass(frozen=True)
class Cell:
    """One (dose, view) of the study, the methods side by side."""

    dose: float
    view: str
    pinn: MethodCell
    iterative: MethodCell
    refined: MethodCell | None = None
    """"PINN + refine", where some PINN job of the cell recorded a refinement; else ``None``."""

    def floor(self, component: str, name: str) -> Summary | None:
        """The flat-object floor of the cell: the PINN's record where it has one, else the iterative's.

        Both methods are scored on the same test split and coverage rule, so the floors agree;
        taking one keeps a value that exists when only one method ran.
        """
        return self.pinn.floor(component, name) or self.iterative.floor(component, name)

    @property
    def methods(self) -> tuple[MethodCell, ...]:
        """PINN, "PINN + refine" (where present) and the iterative method, in table order."""
        return (self.pinn, self.iterative) if self.refined is None else (self.pinn, self.refined, self.iterative)

    def method(self, name: str) -> MethodCell | None:
        """The method called ``name`` (:data:`PINN`, :data:`PINN_REFINE`, :data:`ITERATIVE`), ``None`` if absent."""
        return next((m for m in self.methods if m.method == name), None)


def _settings_text(key: tuple[int, float] | None) -> str:
    """``300 steps, lr 0.001``, as the report labels a refine setting."""
    return "settings not recorded" if key is None else f"{key[0]} steps, lr {key[1]:g}"


def _seeds_text(seeds: Sequence[int | None]) -> str:
    named = [str(s) for s in seeds if s is not None]
    return ("seed " if len(named) == 1 else "seeds ") + ", ".join(named) if named else "no seed recorded"


def refined_cell(pinn: MethodCell) -> MethodCell | None:
    """"PINN + refine" from the PINN's scored replicates that recorded a refinement; ``None`` without any.

    Each replicate is the refine block read as scores of their own (its time is fine-tuning plus
    prediction); it has no product of its own: ``reconstruction.h5`` is plain prediction's. Replicates
    refined with different (steps, lr) are different methods (the report gives each its own row); the
    comparison has one "PINN + refine" per cell, so such a cell's is :data:`MIXED`, its note naming the
    settings and their seeds, rather than a mean over unlike things.
    """
    refined = [r for r in pinn.replicates if r.scores.refine is not None]
    if not refined:
        return None
    groups: dict[tuple[int, float] | None, list[int | None]] = {}
    for r in refined:
        settings = r.scores.refine.refined_with
        groups.setdefault(None if settings is None else (settings.steps, settings.lr), []).append(r.seed)
    if len(groups) > 1:
        named = "; ".join(
            f"{_settings_text(key)} ({_seeds_text(seeds)})"
            for key, seeds in groups.items())
        return MethodCell(PINN_REFINE, MIXED, notes=(
            f"not compared: its replicates were refined with differing settings ({named}); "
            "`fly64-train report` shows one row per setting",))
    replicates = tuple(Replicate(r.seed, r.scores.refine, None, None, r.test_data_path) for r in refined)
    notes = () if len(replicates) == len(pinn.replicates) else (
        f"{len(replicates)} of {len(pinn.replicates)} scored PINN jobs refined: its mean covers "
        f"{_seeds_text([r.seed for r in refined])}, PINN's {_seeds_text([r.seed for r in pinn.replicates])}",)
    return MethodCell(PINN_REFINE, OK, replicates, notes)


def _view_order(view: str) -> tuple[int, str]:
    return (VIEWS.index(view), view) if view in VIEWS else (len(VIEWS), view)


def _skip_reason(skips: Iterable[SkippedView], dose: float, view: str) -> str | None:
    for skip in skips:
        if skip.view == view and same_dose(skip.dose, dose):
            return skip.reason
    return None


def _method_cell(method: str, jobs: Sequence[TrainingJob | IterativeJob], skip: str | None,
                 absent: str | None) -> MethodCell:
    """One method's cell from its jobs of the (dose, view)."""
    if absent is not None:
        return MethodCell(method, NOT_RUN, notes=(absent,))
    if not jobs:
        if skip is not None:
            return MethodCell(method, SKIPPED, notes=(f"skipped: {skip}",))
        return MethodCell(method, NOT_RUN, notes=("no job recorded",))
    replicates, notes, ended = [], [], set()
    for job in sorted(jobs, key=lambda j: (j.seed is None, j.seed or 0)):
        seed = "" if job.seed is None else f"seed {job.seed}: "
        scores = job.scores
        if job.status == "success" and scores is not None:
            product = _product(job)
            replicates.append(Replicate(job.seed, scores, *product, test_data_path=job.test_data_path))
        elif job.status == "success":
            notes.append(f"{seed}succeeded but recorded no scores")
        elif job.status in UNSUCCESSFUL:
            ended.add(job.status)
            notes.append(f"{seed}{job.status}: {job.error or 'no error recorded'}")
        elif job.status == "skipped":
            ended.add("skipped")
            notes.append(f"{seed}skipped" + (f": {job.error}" if job.error else ""))
        else:
            notes.append(f"{seed}not run ({job.status})")
    if replicates:
        if notes:
            notes.insert(0, f"{len(replicates)} of {len(jobs)} jobs scored")
        return MethodCell(method, OK, tuple(replicates), tuple(notes))
    state = next((status for status in UNSUCCESSFUL if status in ended),
                 SKIPPED if skip or "skipped" in ended else NOT_RUN)
    return MethodCell(method, state, (), tuple(notes))


def _product(job: TrainingJob | IterativeJob) -> tuple[Path | None, str | None]:
    if isinstance(job, IterativeJob):
        return job.reconstruction_path, job.reconstruction_sha256
    record = job.artifact("reconstruction.h5")
    return (None, None) if record is None else (record.path, record.sha256)


def collect(training: TrainingManifest | None, iterative: IterativeManifest | None, *,
            training_absent: str | None = None, iterative_absent: str | None = None) -> tuple[Cell, ...]:
    """Pair the two manifests' jobs by (dose, view), every cell either one knows of, in report order.

    ``*_absent`` is the one-line reason a manifest is ``None`` (the phase was not run).
    """
    pinn_jobs = training.jobs if training else ()
    iter_jobs = iterative.jobs if iterative else ()
    pinn_skips = training.skipped_views if training else ()
    iter_skips = iterative.skipped_views if iterative else ()
    keys = {(float(j.dose), j.view) for j in (*pinn_jobs, *iter_jobs)}
    keys |= {(float(s.dose), s.view) for s in (*pinn_skips, *iter_skips)}
    cells = []
    for dose, view in sorted(keys, key=lambda k: (k[0], _view_order(k[1]))):
        def mine(jobs, dose=dose, view=view):
            return [j for j in jobs if j.view == view and same_dose(j.dose, dose)]

        pinn = _method_cell(PINN, mine(pinn_jobs), _skip_reason(pinn_skips, dose, view), training_absent)
        cells.append(Cell(
            dose, view, pinn,
            _method_cell(ITERATIVE, mine(iter_jobs), _skip_reason(iter_skips, dose, view), iterative_absent),
            refined_cell(pinn),
        ))
    return tuple(cells)
