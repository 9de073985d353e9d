"""Phase G: read both methods' manifests, pair their cells, write ``comparison.md``, ``.csv`` and figures.

The output folder is built under a temporary name beside it and renamed into place only when
every file is written, so a failed run leaves the previous comparison as it was and never half
of a new one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from fly64_compare.cells import OK, Cell, collect
from fly64_compare.figures import plot_metrics_vs_dose
from fly64_compare.images import plot_image_grid
from fly64_compare.table import cell_notes, csv_text, markdown, metrics_present
from fly64_manifest import (
    IterativeManifest,
    ManifestError,
    TrainingManifest,
    atomic_write,
    load_iterative_manifest,
    load_overlap_manifest,
    load_run_manifest,
    load_training_manifest,
)

TRAINING_MANIFEST = "training_manifest.json"
ITERATIVE_MANIFEST = "iterative_manifest.json"
COMPARISON_MD = "comparison.md"
COMPARISON_CSV = "comparison.csv"
METRICS_PNG = "metrics_vs_dose.png"


@dataclass
class CompareConfig:
    """What to compare and where to write it."""

    phase_e_root: Path = Path("study/phase_e")
    """Phase E artifact root (holds ``training_manifest.json``); a missing manifest means PINN was not run."""
    phase_f_root: Path = Path("study/phase_f")
    """Phase F artifact root (holds ``iterative_manifest.json``); a missing manifest means Phase F was not run."""
    output: Path = Path("study/compare")
    """The comparison folder; replaced as a whole when the new one is complete."""

    def check(self) -> None:
        """Refuse an output folder that is, holds, or lies inside an input root (a swap would destroy inputs)."""
        out = Path(self.output).resolve()
        for name in ("phase_e_root", "phase_f_root"):
            root = Path(getattr(self, name)).resolve()
            if out == root or out.is_relative_to(root) or root.is_relative_to(out):
                raise ValueError(f"--output {self.output} overlaps --{name.replace('_', '-')} "
                                 f"{getattr(self, name)}: the comparison needs a folder of its own")


@dataclass(frozen=True)
class CompareResult:
    """What a run wrote."""

    output: Path
    cells: tuple[Cell, ...]
    files: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())


def _manifest_path(root: Path, name: str) -> Path:
    return root if root.is_file() else root / name


@dataclass(frozen=True)
class Inputs:
    """The two phases' manifests as found, and why one is missing."""

    training: TrainingManifest | None
    """Phase E's manifest (``None``: the PINN was not run)."""
    iterative: IterativeManifest | None
    """Phase F's manifest (``None``: the iterative method was not run)."""
    training_absent: str | None
    """One line saying why ``training`` is ``None`` (``None`` when it is there)."""
    iterative_absent: str | None
    """One line saying why ``iterative`` is ``None``."""
    notes: tuple[str, ...]
    """Everything the comparison's notes should say of its inputs, the absences included."""


def load_inputs(cfg: CompareConfig) -> Inputs:
    """Both manifests (``None`` where the phase was not run, with a note); ManifestError for a bad one."""
    training = iterative = None
    training_absent = iterative_absent = None
    pinn_path = _manifest_path(Path(cfg.phase_e_root), TRAINING_MANIFEST)
    iter_path = _manifest_path(Path(cfg.phase_f_root), ITERATIVE_MANIFEST)
    if pinn_path.is_file():
        training = load_training_manifest(pinn_path)
    else:
        training_absent = f"PINN not run: no {pinn_path}"
    if iter_path.is_file():
        iterative = load_iterative_manifest(iter_path)
    else:
        iterative_absent = f"iterative not run: no {iter_path} (run `make iterative`)"
    if training is None and iterative is None:
        raise ManifestError(f"nothing to compare: neither {pinn_path} nor {iter_path} exists")
    notes = [n for n in (training_absent, iterative_absent) if n] + (start_notes(iterative) if iterative else [])
    return Inputs(training, iterative, training_absent, iterative_absent, tuple(notes))


def start_notes(iterative: IterativeManifest) -> list[str]:
    """One note per starting object other than flat that the iterative jobs record.

    ``fly64-iterative --pinn-start`` fits from the PINN's prediction ("PINN + LSQML"): then the
    "iterative" side of every table is that combined method, and the reader must be told.
    """
    starts: dict[tuple[str, str], int] = {}
    for job in iterative.jobs:
        start = (job.engine_options or {}).get("object_start")
        if isinstance(start, str) and not start.startswith("flat"):
            starts[start, job.engine] = starts.get((start, job.engine), 0) + 1
    return [f"starting object: {count} of {len(iterative.jobs)} iterative jobs started from \"{start}\", not "
            f"from a flat object (`fly64-iterative --pinn-start`): their column is PINN + {engine.upper()}"
            for (start, engine), count in starts.items()]


def data_records(training: TrainingManifest | None, iterative: IterativeManifest | None) -> dict[str, str]:
    """Absolute data path -> sha256, from the Phase C and D manifests the two phases name as their roots.

    A root without its manifest contributes nothing (the truth read from it is then unchecked);
    an invalid manifest is a ManifestError.
    """
    records: dict[str, str] = {}
    roots = {(m.phase_c_root, m.phase_d_root) for m in (training, iterative) if m is not None}
    for phase_c, phase_d in roots:
        for root, name, load in ((phase_c, "run_manifest.json", load_run_manifest),
                                 (phase_d, "overlap_manifest.json", load_overlap_manifest)):
            if (Path(root) / name).is_file():
                records.update({os.path.normpath(r.path): r.sha256 for r in load(root).files() if r.sha256})
    return records


def compare(cfg: CompareConfig) -> CompareResult:
    """Write the comparison of ``cfg``'s roots into ``cfg.output``.

    Raises
    ------
    ValueError
        A bad configuration (see :meth:`CompareConfig.check`).
    ManifestError
        A manifest, product or test split that cannot be read or does not match its record
        (one line naming the file); nothing is written then.
    """
    cfg.check()
    inputs = load_inputs(cfg)
    training, iterative, notes = inputs.training, inputs.iterative, list(inputs.notes)
    cells = collect(training, iterative, training_absent=inputs.training_absent,
                    iterative_absent=inputs.iterative_absent)
    sources = [str(m.path) for m in (training, iterative) if m is not None]
    records = data_records(training, iterative)
    output = Path(cfg.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
    try:
        figures = [METRICS_PNG] if cells else []
        metrics = metrics_present(cells)
        if metrics:
            plot_metrics_vs_dose(cells, metrics, tmp / METRICS_PNG)
        else:
            figures = []
            notes.append("no cell has scores from either method: no metric figure")
        for view in dict.fromkeys(c.view for c in cells):
            if any(m.state == OK for c in cells if c.view == view for m in c.methods):
                name = f"images_{view}.png"
                plot_image_grid(cells, view, tmp / name, records)
                figures.append(name)
        if any(len(m.replicates) > 1 for c in cells for m in c.methods):
            notes.append("image grids show each cell's lowest-seed reconstruction")
        all_notes = [*notes, *cell_notes(cells)]
        with atomic_write(tmp / COMPARISON_CSV) as fh:
            fh.write(csv_text(cells))
        with atomic_write(tmp / COMPARISON_MD) as fh:
            fh.write(markdown(cells, sources=sources, notes=all_notes, figures=figures))
        files = tuple(sorted(p.name for p in tmp.iterdir()))
        _swap_into_place(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return CompareResult(output, cells, files, tuple(all_notes))


def _swap_into_place(tmp: Path, output: Path) -> None:
    """Rename the finished ``tmp`` to ``output``; an earlier ``output`` is removed only after that succeeded."""
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's folders are owner-only; give the usual permissions
    if not output.exists():
        os.replace(tmp, output)
        return
    if not output.is_dir() or output.is_symlink():
        raise ManifestError(f"{output}: exists and is not a comparison folder; move it away first")
    old = output.with_name(f".{output.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(output, old)
    try:
        os.replace(tmp, output)
    except BaseException:
        os.replace(old, output)  # put the previous comparison back
        raise
    shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
