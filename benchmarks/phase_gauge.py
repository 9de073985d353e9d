"""Phase gauge: how much of the object's phase a per-patch network loses, and what synchronisation recovers.

The fly64 study's issue 23 asks why LSQML beats PtychoPINN on phase at dose 1e5. A diffraction pattern
``|F(P * O * exp(ia))|^2`` does not depend on a constant phase ``a`` of its object patch, so a network that
maps one pattern to one patch cannot know that patch's phase offset (the *gauge*): it outputs patches with
almost no per-patch mean phase, and phase structure larger than the probe (the fly's body) is lost except
its edges. *Angular synchronisation* (Singer 2011) re-phases each patch to agree with its neighbours over
their overlaps before stitching: the top eigenvector of the Hermitian matrix of pairwise overlap inner
products gives every patch a phasor.

For each (dose, view) of a study this script loads the trained Phase E bundle and its test split (as
``training_manifest.json`` records them) and prints one JSON line with:

1. ``patch_mean_phase``: the spread (circular std after removing the mean) of the per-patch weighted mean
   phase (weight ``|probe|^2 * model support``) of the PINN's patches and of the true patches at the same
   positions, and their correlation;
2. ``sync``: the offsets synchronisation adds, their correlation with the truth's per-patch mean phase, and
   the spread of each patch's offset to its true patch before and after;
3. ``plain`` / ``synchronised``: amplitude and phase SSIM and Pearson from the project's scorer, and the
   information score (``recorded`` holds what Phase E wrote for the plain model, as a cross-check);
4. ``oracle``: the true patches given random offsets, synchronised: the residual offset spread (the
   synchronisation's own error, without any network).

Usage (from the repo root; a study made by ``make study``)::

    nice -n 15 .venv/bin/python benchmarks/phase_gauge.py --study-root /tmp/study \\
        --dose 100000 --view baseline --output /tmp/phase_gauge.json

Each run takes about a minute of CPU per (dose, view). A measuring script, not a product feature: nothing
in the study is written.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_DOSES = (1000.0, 10000.0, 100000.0)
DEFAULT_VIEWS = ("baseline",)
#: Below this many patches the dense eigensolver is exact and quicker than ARPACK (which needs k < n).
DENSE_EIGH_MAX = 256
#: A patch whose eigenvector entry is below this share of the largest has no overlap with the main
#: connected component (the eigenvector is ~0 there): it keeps its own phase.
UNLINKED_SHARE = 1e-6


# --------------------------------------------------------------------------- synchronisation


def synchronise(patches: np.ndarray, ycoords: np.ndarray, xcoords: np.ndarray,
                weight: np.ndarray) -> np.ndarray:
    """Unit phasors ``z`` (P,) such that the patches ``z[k] * patches[k]`` agree in phase over their overlaps.

    The gauge: a pattern fixes its patch only up to a constant phase, so each predicted patch carries an
    unknown offset ``a_k``. Over the overlap of patches p and q the weighted inner product
    ``h_pq = sum w_p w_q P_p conj(P_q)`` is ``~ exp(-i (a_p - a_q))`` times a positive number; the Hermitian
    matrix ``H[p, q] = conj(h_pq)`` is then ``~ D |T| D^H`` with ``D = diag(exp(i a))``, and its top
    eigenvector's phases are the ``a_k`` up to one global constant (angular synchronisation, Singer 2011):
    a least-squares agreement of all pairwise offsets at once, not a chain that accumulates error. The
    matrix is normalised by the patches' degrees (below), which keeps every patch's entry well away from 0.

    ``weight`` (N, N) is the stitch's ``|probe|^2 * support``: pixels are compared where both patches are
    lit, each with its own probe's weight. Patch pixel ``i`` sits at object coordinate ``y - N/2 + i`` (the
    stitch's convention); the displacement between two positions is rounded to whole pixels, which is
    enough for a phase offset (a smooth quantity) and keeps every overlap a plain slice. The global
    constant is chosen so that the circular mean of the added offsets is 0 (the stitched object's phase
    stays where the model put it). A patch overlapping no other keeps its phase (phasor 1).
    """
    from scipy import sparse
    from scipy.sparse.linalg import eigsh
    from scipy.spatial import cKDTree

    from fly64_train.evaluation.stitch import weighted_box

    n = len(patches)
    if n == 0:
        return np.ones(0, np.complex128)
    (r0, r1), (c0, c1) = weighted_box(weight)
    h, w = r1 - r0, c1 - c0
    boxes = patches[:, r0:r1, c0:c1].astype(np.complex128) * weight[r0:r1, c0:c1]
    ycoords, xcoords = np.asarray(ycoords, np.float64), np.asarray(xcoords, np.float64)
    pairs = cKDTree(np.c_[ycoords, xcoords]).query_pairs(r=math.hypot(h, w), output_type="ndarray")
    p, q = pairs[:, 0], pairs[:, 1]
    shift = np.rint(np.c_[ycoords[q] - ycoords[p], xcoords[q] - xcoords[p]]).astype(np.int64)
    overlapping = (np.abs(shift[:, 0]) < h) & (np.abs(shift[:, 1]) < w)
    p, q, shift = p[overlapping], q[overlapping], shift[overlapping]
    if p.size == 0:
        return np.ones(n, np.complex128)
    # One vectorised product per distinct displacement (a raster scan has few; a jittered one more).
    values = np.empty(p.size, np.complex128)
    distinct, which = np.unique(shift, axis=0, return_inverse=True)
    which = which.ravel()
    for k, (dy, dx) in enumerate(distinct):
        rows = np.flatnonzero(which == k)
        # Pixel i of p's box is pixel i - d of q's box.
        a = boxes[p[rows], max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)]
        b = boxes[q[rows], max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
        values[rows] = np.einsum("kij,kij->k", a, b.conj())
    # Normalised by the degrees (sum of |h_pq| over a patch's neighbours): the top eigenvector of the raw
    # matrix concentrates where the overlaps are strongest (bright object, dense scan) and decays
    # exponentially away from there, leaving far patches phasors of round-off; that of
    # Delta^-1/2 H Delta^-1/2 is Delta^1/2 times the phasors when the offsets are consistent.
    degree = np.bincount(p, np.abs(values), n) + np.bincount(q, np.abs(values), n)
    scale = np.where(degree > 0, 1 / np.sqrt(np.maximum(degree, 1e-300)), 0.0)
    upper = sparse.coo_matrix((values.conj() * scale[p] * scale[q], (p, q)), shape=(n, n)).tocsr()
    matrix = upper + upper.conj().T
    if n <= DENSE_EIGH_MAX:
        vector = np.linalg.eigh(matrix.toarray())[1][:, -1]
    else:
        # A fixed start vector: the same phasors on every run (ARPACK's default start is random).
        vector = eigsh(matrix, k=1, which="LA", v0=np.ones(n, np.complex128))[1][:, 0]
    size = np.abs(vector)
    phasors = np.where(size > UNLINKED_SHARE * size.max(), vector / np.maximum(size, 1e-300), 1.0)
    mean = phasors.mean()
    return phasors * (np.conj(mean) / abs(mean) if abs(mean) > 0 else 1.0)


class SynchronisedModel:
    """A loaded model whose stitch synchronises the patches first; everything else is the wrapped model's.

    An adapter, not a patch of the model: the project's own callers of ``stitch`` (the information score)
    run unchanged on synchronised patches, and the wrapped model stays as it was.
    """

    def __init__(self, model: Any) -> None:
        self._model = model

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def stitch(self, patches: np.ndarray, ycoords: np.ndarray, xcoords: np.ndarray, shape: tuple[int, int],
               weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The wrapped model's stitch of the synchronised patches."""
        phasors = synchronise(patches, ycoords, xcoords, weight)
        return self._model.stitch((patches * phasors[:, None, None]).astype(patches.dtype), ycoords, xcoords,
                                  shape, weight)


# --------------------------------------------------------------------------- measures


def centred(angles: np.ndarray) -> np.ndarray:
    """``angles`` minus their circular mean, wrapped to (-pi, pi]."""
    return np.angle(np.exp(1j * (angles - np.angle(np.mean(np.exp(1j * angles))))))


def mean_phase(patches: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(P,) phase of each patch's weighted sum: the patch's mean phase where the probe lights it."""
    return np.angle(np.einsum("kij,ij->k", patches.astype(np.complex128), weight))


def offset_to(patches: np.ndarray, reference: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(P,) phase offset of each patch to its reference patch: ``angle(sum w P conj(R))``."""
    return np.angle(np.einsum("kij,kij,ij->k", patches.astype(np.complex128), reference.conj(), weight))


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")


@dataclass(frozen=True)
class Scores:
    """The project's scores of one stitched reconstruction of the test split."""

    amplitude_ssim: float
    """SSIM of the aligned amplitude on the covered pixels."""
    amplitude_pearson: float
    """Pearson correlation of the aligned amplitude."""
    phase_ssim: float
    """SSIM of the phase after the scorer's offset and ramp alignment."""
    phase_pearson: float
    """Pearson correlation of the aligned phase."""
    info: float
    """Held-out information score (0: flat object, 1: the true object)."""


@dataclass(frozen=True)
class PhaseSpread:
    """Per-patch weighted mean phase of the PINN's patches against the true patches at the same positions."""

    pinn_std_rad: float
    """Circular std (after removing the mean) of the PINN patches' mean phases."""
    truth_std_rad: float
    """The same of the true patches: what a network would need to reproduce."""
    correlation: float
    """Pearson correlation of the two (centred) sets of mean phases."""


@dataclass(frozen=True)
class SyncEffect:
    """What synchronisation does to the PINN's patches."""

    offset_std_rad: float
    """Circular std of the offsets it adds (their circular mean is 0)."""
    offset_truth_correlation: float
    """Correlation of the added offsets with the truth's centred per-patch mean phase (1: it adds the
    missing mean phase)."""
    to_truth_std_plain_rad: float
    """Circular std of each plain patch's phase offset to its true patch."""
    to_truth_std_synchronised_rad: float
    """The same after synchronisation (lower: the patches agree with the truth's large-scale phase)."""


@dataclass(frozen=True)
class Oracle:
    """Synchronisation of the true patches given random offsets: its own error, without a network."""

    injected_std_rad: float
    """Circular std of the random offsets given (uniform on the circle)."""
    residual_std_rad: float
    """Circular std of what is left of them after synchronisation."""
    residual_max_rad: float
    """Largest |residual| (after removing the common offset)."""


@dataclass(frozen=True)
class GaugeResult:
    """The phase gauge of one trained (dose, view)."""

    dose: float
    """Photons per pattern of the study cell."""
    view: str
    """Phase E view (baseline, dense, sparse, ...)."""
    gridsize: int
    """Patterns per group the model was trained on."""
    positions: int
    """Test-split scan positions (patches)."""
    patch_mean_phase: PhaseSpread
    """Measure 1: how much per-patch mean phase the PINN carries."""
    sync: SyncEffect
    """Measure 2: the offsets synchronisation adds."""
    plain: Scores
    """Measure 3: scores of the plain stitch (as Phase E scores it)."""
    synchronised: Scores
    """Measure 3: scores of the synchronised stitch."""
    recorded_phase_ssim: float | None
    """Phase SSIM Phase E recorded for this job (should equal ``plain.phase_ssim``); None if absent."""
    recorded_info: float | None
    """Information score Phase E recorded (should equal ``plain.info``); None if absent."""
    oracle: Oracle
    """Measure 4: synchronisation of the true patches."""
    wall_s: float
    """Seconds this measurement took."""

    def check(self) -> None:
        """Refuse spreads that are negative or not finite, naming the field (a broken measurement)."""
        spreads = {"patch_mean_phase.pinn_std_rad": self.patch_mean_phase.pinn_std_rad,
                   "patch_mean_phase.truth_std_rad": self.patch_mean_phase.truth_std_rad,
                   "sync.offset_std_rad": self.sync.offset_std_rad,
                   "oracle.residual_std_rad": self.oracle.residual_std_rad}
        for name, value in spreads.items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite spread >= 0, got {value}")

    def to_json(self) -> dict[str, Any]:
        """A JSON object of the fields (floats rounded to 6 digits, NaN as null)."""
        return _rounded(asdict(self))


def _rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value


# --------------------------------------------------------------------------- one study cell


def measure(study_root: Path, dose: float, view: str, gridsize: int | None, device: str,
            seed: int) -> GaugeResult:
    """Load the Phase E job of ``(dose, view)`` and its test split; measure the gauge (see the module doc)."""
    from fly64_data.physics import extract_patches
    from fly64_manifest import load_training_manifest
    from fly64_train.bundle import load_contents, read_bundle
    from fly64_train.data.reader import dataset_of
    from fly64_train.evaluation.evaluate import EvaluationConfig, grouping_for, score_stitched
    from fly64_train.evaluation.information import model_information
    from fly64_train.evaluation.predict import predict_patches

    started = time.perf_counter()
    # The manifest records the job's bundle (with its digest) and the exact test split it was scored on.
    job = load_training_manifest(study_root).job(dose, view, gridsize)
    if job.status != "success" or job.bundle_path is None:
        raise SystemExit(f"dose {dose:g} {view}: Phase E job {job.job_dir} is {job.status}, no bundle to measure")
    contents = read_bundle(job.bundle_path, expected_sha256=job.bundle_sha256)
    model = load_contents(contents, device=device)
    cfg = grouping_for(contents.manifest, EvaluationConfig(information=False, device=device))
    data = dataset_of(job.test_data_path, model.gridsize, cfg.neighbor_count)
    predicted = predict_patches(model, data, neighbor_count=cfg.neighbor_count, grouping_seed=cfg.grouping_seed,
                                batch_size=cfg.batch_size)
    truth = data.readers["objectGuess"].read_all()
    weight = (np.abs(data.probe).astype(np.float64) ** 2) * model.support().astype(np.float64)
    patches, y, x = predicted.patches, predicted.ycoords, predicted.xcoords
    # The simulator's own sub-pixel extraction: the patches the patterns were made from.
    true_patches = extract_patches(truth.astype(np.complex128), y, x, model.patch_size)

    pinn_mean, truth_mean = centred(mean_phase(patches, weight)), centred(mean_phase(true_patches, weight))
    spread = PhaseSpread(float(pinn_mean.std()), float(truth_mean.std()), _correlation(pinn_mean, truth_mean))

    phasors = synchronise(patches, y, x, weight)
    synced = (patches * phasors[:, None, None]).astype(patches.dtype)
    added = np.angle(phasors)
    effect = SyncEffect(float(centred(added).std()), _correlation(centred(added), truth_mean),
                        float(centred(offset_to(patches, true_patches, weight)).std()),
                        float(centred(offset_to(synced, true_patches, weight)).std()))

    def scores(stitched_patches: np.ndarray, scored_model: Any) -> Scores:
        image, summed = model.stitch(stitched_patches, y, x, truth.shape, weight)
        evaluation = score_stitched(image, summed, truth, float(weight.max()), cfg)
        info = model_information(scored_model, data, neighbor_count=cfg.neighbor_count,
                                 grouping_seed=cfg.grouping_seed, batch_size=cfg.batch_size)
        a, ph = evaluation.amplitude_scores, evaluation.phase_scores
        return Scores(float(a.ssim), float(a.pearson), float(ph.ssim), float(ph.pearson), float(info.info))

    plain, synchronised = scores(patches, model), scores(synced, SynchronisedModel(model))

    rng = np.random.default_rng(seed)
    injected = rng.uniform(-np.pi, np.pi, len(true_patches))
    oracle_phasors = synchronise(true_patches * np.exp(1j * injected)[:, None, None], y, x, weight)
    residual = centred(np.angle(oracle_phasors * np.exp(1j * injected)))
    oracle = Oracle(float(centred(injected).std()), float(residual.std()), float(np.abs(residual).max()))

    metrics = job.metrics or {}
    recorded_ssim = (metrics.get("phase") or {}).get("ssim")
    recorded_info = (metrics.get("information") or {}).get("info")
    result = GaugeResult(
        dose=float(dose), view=view, gridsize=int(model.gridsize), positions=len(patches),
        patch_mean_phase=spread, sync=effect, plain=plain, synchronised=synchronised,
        recorded_phase_ssim=None if recorded_ssim is None else float(recorded_ssim),
        recorded_info=None if recorded_info is None else float(recorded_info),
        oracle=oracle, wall_s=time.perf_counter() - started)
    result.check()
    return result


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Measure the per-patch phase offset (the gauge) of trained PtychoPINN models and what "
                    "angular synchronisation of the patches recovers. Prints one JSON line per (dose, view).",
        epilog="Example: nice -n 15 .venv/bin/python benchmarks/phase_gauge.py --study-root /tmp/study "
               "--dose 100000 --view baseline --output /tmp/phase_gauge.json")
    ap.add_argument("--study-root", type=Path, required=True,
                    help="study folder holding phase_c, phase_d and phase_e as `make study` writes them "
                         "(read only)")
    ap.add_argument("--dose", type=float, action="append", default=None,
                    help="photons per pattern of a Phase E cell; repeat for several "
                         f"(default: {' '.join(f'{d:g}' for d in DEFAULT_DOSES)})")
    ap.add_argument("--view", action="append", default=None,
                    help=f"Phase E view (baseline, dense, sparse, ...); repeat for several "
                         f"(default: {' '.join(DEFAULT_VIEWS)})")
    ap.add_argument("--gridsize", type=int, default=None,
                    help="gridsize of the job, needed only when a view was trained at several")
    ap.add_argument("--device", default="cpu", help="where the model predicts and stitches (default: cpu)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the oracle's random offsets (default: 0)")
    ap.add_argument("--output", type=Path, default=None,
                    help="also write all results as one JSON document to this file (atomically)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    from fly64_manifest import atomic_write

    args = parse_args(argv)
    doses, views = args.dose or list(DEFAULT_DOSES), args.view or list(DEFAULT_VIEWS)
    results = []
    for dose in doses:
        for view in views:
            result = measure(args.study_root, dose, view, args.gridsize, args.device, args.seed).to_json()
            print(json.dumps(result, allow_nan=False), flush=True)
            results.append(result)
    if args.output is not None:
        document = {"study_root": str(args.study_root.resolve()), "seed": args.seed, "results": results}
        with atomic_write(args.output) as fh:
            fh.write(json.dumps(document, indent=2, allow_nan=False) + "\n")


if __name__ == "__main__":
    main()
