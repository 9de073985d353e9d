"""Forward-model checks on the default geometry, without a network (issue 23 §2), for both backends.

The default Phase C sample (N = 128, the 1152 px fly object, the 47 px probe, the 20 px raster), its
training split, and every view the study trains on: the baseline (gs1, all positions) and the dense and
sparse views (gs2) selected on the patch and on the probe spacing basis, and the default study's gs2
control (dense on the probe basis thinned to sparse's position count), grouped as training groups them.
For a few dozen groups of each, Poisson counts at dose 1e5 are drawn from the simulator's own
intensities; the candidates are put through the model's own forward path (gs2: merge onto the canvas the
training job fixes from all its groups' offsets, re-extract, probe, far field) and scored with the Poisson
NLL in counts. The true object must beat a flat object, the truth shifted by one pixel and the truth with
its amplitude scaled by 0.9; the gs2 merge of the true patches must cost less than 1 % of the truth-flat
gap; the canvas must hold every group of the view (no weight falls off it).

Measured values are written to docs/evaluation.md ("Forward-model checks").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pytest
import torch

from fly64_data.design import get_study_design
from fly64_data.grouping import make_groups
from fly64_data.physics import extract_patches, far_field_intensity
from fly64_data.sample import default_sample
from fly64_data.simulate import split_mask
from fly64_overlap.matching import select_compact
from fly64_overlap.probe import measure_probe_diameter
from fly64_overlap.selection import select_min_spacing
from fly64_overlap.spacing import view_spacing
from fly64_train.training.model_config import ModelConfig

DOSE = 1e5
#: Groups (gs2) or patterns (gs1) scored per view: enough for a stable NLL, few enough for seconds.
GS2_GROUPS = 8
GS1_PATTERNS = 32
VIEWS = ("baseline", "dense-patch", "sparse-patch", "dense-probe", "sparse-probe", "dense_matched-probe")


@dataclass(frozen=True)
class ViewData:
    """A view's scored groups: true patches, counts, offsets, and all the view's group offsets."""

    gridsize: int
    patches: np.ndarray
    """(G, C, N, N) complex128 true object patches of the scored groups."""
    shifted: np.ndarray
    """The same patches cut from the object shifted by one pixel (along rows)."""
    counts: np.ndarray
    """(G, C, N, N) Poisson counts at :data:`DOSE`."""
    offsets: np.ndarray
    """(G, C, 2) centroid offsets of the scored groups."""
    all_offsets: np.ndarray
    """(all groups, C, 2): what a training job sizes its canvas from."""
    scale: float
    probe: np.ndarray


@cache
def _geometry() -> tuple[Any, dict[str, np.ndarray]]:
    """The default sample and the training-split positions of every view (indices into the split)."""
    design = get_study_design()
    sample = default_sample(int(design.patch_size_pixels))
    train, _ = split_mask(sample.ycoords)
    x, y = sample.xcoords[train], sample.ycoords[train]
    diameter = measure_probe_diameter(sample.probe).value_px
    views = {"baseline": np.arange(x.size)}
    for basis in ("patch", "probe"):
        for view in ("dense", "sparse"):
            spacing = view_spacing(design, view, sample.probe.shape[0], basis, diameter)
            views[f"{view}-{basis}"] = select_min_spacing(x, y, spacing.value_px,
                                                          int(design.rng_seeds["subsampling"])).indices
    # The default study's gs2 control (make study: probe basis, --match-positions sparse): dense thinned
    # compactly to sparse's position count, as Phase D does it.
    dense = views["dense-probe"]
    keep = select_compact(x[dense], y[dense], views["sparse-probe"].size, int(design.rng_seeds["subsampling"]))
    views["dense_matched-probe"] = dense[keep]
    return (sample, x, y), views


@cache
def _view(name: str) -> ViewData:
    (sample, x, y), views = _geometry()
    design = get_study_design()
    n = sample.probe.shape[0]
    idx = views[name]
    gridsize = 1 if name == "baseline" else 2
    yy, xx = y[idx], x[idx]
    groups = make_groups(yy, xx, gridsize, int(design.neighbor_count), None, int(design.rng_seeds["grouping"]))
    count = GS1_PATTERNS if gridsize == 1 else GS2_GROUPS
    rows = np.sort(np.random.default_rng(0).choice(len(groups), size=min(count, len(groups)), replace=False))
    chosen = groups.subset(rows)
    members = chosen.indices.ravel()
    shape = (*chosen.indices.shape, n, n)
    obj = sample.object.astype(np.complex128)
    patches = extract_patches(obj, yy[members], xx[members], n).reshape(shape)
    shifted = extract_patches(obj, yy[members] + 1.0, xx[members], n).reshape(shape)
    intensity = far_field_intensity(sample.probe.astype(np.complex128) * patches)
    scale = float(np.sqrt(DOSE / intensity.sum(axis=(-2, -1)).mean()))
    counts = np.random.default_rng(1).poisson(intensity * scale**2).astype(np.float64)
    return ViewData(gridsize, patches, shifted, counts, chosen.offsets, groups.offsets, scale, sample.probe)


# -- the two backends, numpy in and out ------------------------------------------------------------------

@dataclass
class Forward:
    """One backend's model forward path for one view's training job."""

    intensity: Any
    """(patches (G, C, N, N), offsets (G, C, 2) or None) -> (G, C, N, N) predicted intensity, numpy."""
    merge: Any
    """(patches, offsets) -> the gs2 merge and re-extraction (the object constraint), numpy."""
    coverage: Any
    """offsets -> (G, M, M) summed placed merge weights on the canvas the model uses, numpy."""
    weights: np.ndarray
    """(N, N) merge weights."""
    support: np.ndarray
    """(N, N) the model's object support (it predicts zero outside)."""


def _torch(cfg: ModelConfig, data: ViewData) -> Forward:
    from fly64_train.backends.torch.model import PtychoPINN

    physics = importlib.import_module("fly64_train.backends.torch.physics")
    model = PtychoPINN(cfg, data.probe, data.scale)
    if cfg.gridsize > 1:
        model.fix_canvas(data.all_offsets)  # what a training job does with all its groups

    def t(a: np.ndarray | None) -> torch.Tensor | None:
        return None if a is None else torch.from_numpy(np.ascontiguousarray(a))

    def intensity(patches: np.ndarray, offsets: np.ndarray | None) -> np.ndarray:
        with torch.no_grad():
            return model.forward_intensity(t(patches.astype(np.complex64)), t(offsets)).numpy()

    def merge(patches: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return physics.merge_and_reextract(t(patches.astype(np.complex64)), t(offsets).float(),
                                               model.merge_weights(), model.canvas_side).numpy()

    def coverage(offsets: np.ndarray) -> np.ndarray:
        shape = (*offsets.shape[:2], cfg.patch_size, cfg.patch_size)
        with torch.no_grad():
            _, cov = physics.merge_patches(torch.zeros(shape, dtype=torch.complex64), t(offsets).float(),
                                           model.merge_weights(), model.canvas_side)
        return cov.numpy()

    return Forward(intensity, merge, coverage, model.merge_weights().numpy(), model.support.numpy())


def _tensorflow(cfg: ModelConfig, data: ViewData) -> Forward:
    tf = pytest.importorskip("tensorflow")
    from fly64_train.backends.tensorflow.model import ForwardModel

    physics = importlib.import_module("fly64_train.backends.tensorflow.physics")
    model = ForwardModel(cfg, data.probe, data.scale)

    def c(a: np.ndarray | None, dtype: Any) -> Any:
        return None if a is None else tf.constant(a.astype(dtype))

    def intensity(patches: np.ndarray, offsets: np.ndarray | None) -> np.ndarray:
        return np.asarray(model(c(patches, np.complex64), c(offsets, np.float32)))

    def merge(patches: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        return np.asarray(physics.merge_and_reextract(c(patches, np.complex64), c(offsets, np.float32),
                                                      model.merge_weights()))

    def coverage(offsets: np.ndarray) -> np.ndarray:
        shape = (*offsets.shape[:2], cfg.patch_size, cfg.patch_size)
        _, cov = physics.merge_patches(tf.zeros(shape, tf.complex64), c(offsets, np.float32), model.merge_weights())
        return np.asarray(cov)

    return Forward(intensity, merge, coverage, np.asarray(model.merge_weights()), np.asarray(model.support))


BACKENDS = {"torch": _torch, "tensorflow": _tensorflow}


def nll(intensity: np.ndarray, counts: np.ndarray, scale: float) -> float:
    """Total Poisson NLL in counts (log k! dropped: it cancels in every comparison)."""
    lam = scale**2 * intensity.astype(np.float64)
    return float((lam - counts * np.log(lam + 1e-8)).sum())


@pytest.fixture(params=list(BACKENDS))
def backend(request) -> str:
    return request.param


@pytest.fixture(params=VIEWS)
def case(request, backend) -> tuple[ViewData, Forward]:
    data = _view(request.param)
    cfg = ModelConfig(patch_size=data.probe.shape[0], gridsize=data.gridsize)
    return data, BACKENDS[backend](cfg, data)


def test_the_true_object_beats_flat_shifted_and_dimmed_objects_and_survives_the_merge(case):
    data, fwd = case
    offsets = data.offsets if data.gridsize > 1 else None
    support = fwd.support
    g, c, n, _ = data.patches.shape

    def score(patches: np.ndarray, offsets: np.ndarray | None = offsets) -> float:
        # The model predicts zero outside its support: candidates are what it could output.
        return nll(fwd.intensity(patches * support, offsets).reshape(data.counts.shape), data.counts, data.scale)

    # The flat object knows the mean transmission: the constant whose summed rate matches the counts.
    flat_amp = np.sqrt(data.counts.sum() / (g * c * data.scale**2 * (np.abs(data.probe) ** 2 * support).sum()))
    truth = score(data.patches)
    flat = score(np.full_like(data.patches, flat_amp))
    gap = flat - truth
    assert gap > 0, (truth, flat)
    # Relative to the truth-flat gap, so a failure says how close the impostor came.
    shifted = (score(data.shifted) - truth) / gap
    dimmed = (score(0.9 * data.patches) - truth) / gap
    assert shifted > 0.005 and dimmed > 0.05, (shifted, dimmed)
    if data.gridsize == 1:
        return
    # gs2: merging the true patches of a group and re-extracting them (the object constraint) changes
    # their NLL by less than 1 % of the gap. Without the merge: each patch alone, a group of one.
    alone = score(data.patches.reshape(g * c, 1, n, n), None)
    assert abs(truth - alone) < 0.01 * (flat - alone), (truth - alone) / (flat - alone)
    # The bilinear place-and-re-extract is close to an identity on the support (it interpolates twice).
    truth_patches = data.patches * support
    change = np.abs(np.abs(fwd.merge(truth_patches, data.offsets)) - np.abs(truth_patches))[..., support > 0]
    assert change.max() < 0.05, change.max()


def test_the_canvas_holds_every_group_of_the_view(case):
    data, fwd = case
    if data.gridsize == 1:
        pytest.skip("gs1 has no canvas")
    # The groups reaching furthest from their centroid decide whether anything is clipped: if every
    # member's placed weights land whole on the canvas, no group's can fall off it.
    reach = np.abs(data.all_offsets).max(axis=(1, 2))
    far = np.argsort(reach)[-4:]
    offsets = data.all_offsets[far]
    coverage = fwd.coverage(offsets)
    placed = coverage.sum(axis=(-2, -1))
    expected = offsets.shape[1] * fwd.weights.sum()
    np.testing.assert_allclose(placed, expected, rtol=1e-4)
    # And the weights do not touch the canvas edge (the last bilinear tap stays inside).
    edge = np.concatenate([coverage[:, 0], coverage[:, -1], coverage[:, :, 0], coverage[:, :, -1]], axis=1)
    assert edge.max() == 0


def test_the_views_are_grouped_as_the_study_groups_them():
    # Guard the fixture: each gs2 view has groups, and the probe basis keeps far more positions than
    # the patch basis (the overlap axis of docs/overlap.md).
    _, views = _geometry()
    sizes = {name: idx.size for name, idx in views.items()}
    assert sizes["dense-probe"] > sizes["dense-patch"] > sizes["sparse-patch"] > 0
    assert sizes["dense-probe"] > sizes["sparse-probe"] == sizes["dense_matched-probe"] > 0


@pytest.mark.parametrize("name", ["baseline", "dense-probe"])
def test_a_patch_phase_offset_is_invisible_to_its_own_pattern_and_only_overlap_pins_it(name, backend):
    # The phase gauge behind docs/study.md's "why LSQML wins phase at 1e5": |F(P O e^{i a})|^2 does not
    # depend on a, so one pattern cannot say a patch's phase offset; only patches that meet on the
    # canvas (gs2 here, all of them in an iterative fit) constrain the offsets relative to each other.
    data = _view(name)
    cfg = ModelConfig(patch_size=data.probe.shape[0], gridsize=data.gridsize)
    fwd = BACKENDS[backend](cfg, data)
    offsets = data.offsets if data.gridsize > 1 else None
    g, c = data.patches.shape[:2]
    truth_patches = data.patches * fwd.support

    def score(patches: np.ndarray) -> float:
        return nll(fwd.intensity(patches, offsets).reshape(data.counts.shape), data.counts, data.scale)

    rng = np.random.default_rng(3)
    per_group = np.exp(1j * rng.uniform(-np.pi, np.pi, (g, 1, 1, 1)))
    per_patch = np.exp(1j * rng.uniform(-0.5, 0.5, (g, c, 1, 1)))
    truth = score(truth_patches)
    flat_amp = np.sqrt(data.counts.sum() / (g * c * data.scale**2 * (np.abs(data.probe) ** 2 * fwd.support).sum()))
    gap = score(np.full_like(truth_patches, flat_amp)) - truth
    # One offset for a whole group (gs1: each pattern's own) leaves every pattern's NLL as it was.
    assert abs(score(truth_patches * per_group) - truth) < 1e-4 * gap
    if data.gridsize == 1:
        assert abs(score(truth_patches * per_patch) - truth) < 1e-4 * gap
        return
    # Members of one group at offsets up to +-0.5 rad apart: the merge averages mismatched patches and
    # every member's pattern sees it, by more than the one-pixel shift costs (test above: > 0.5 % of the gap).
    cost = (score(truth_patches * per_patch) - truth) / gap
    assert cost > 0.05, cost
