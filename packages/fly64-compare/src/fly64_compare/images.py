"""``images_<view>.png``: rows = doses; columns = truth, PINN, iterative, in amplitude and in phase.

Each reconstruction comes from its ptychodus product (``reconstruction.h5``, read with h5py after its
bytes are checked against the sha256 its manifest recorded) and is shown as it was scored: the
alignment the scorer recorded (amplitude scale, phase offset and ramp) is applied to the stored
object, and the phase is put on the truth's branch. The truth is the test split's ``objectGuess``
over the same region. Amplitude panels share one colour scale, phase panels another.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fly64_compare.cells import OK, Cell, MethodCell, Replicate
from fly64_compare.table import dose_label
from fly64_manifest import ManifestError, sha256_file
from fly64_manifest.scores import Alignment

#: Largest object a product may hold (pixels), checked from the header before anything is read.
MAX_OBJECT_PIXELS = 64_000_000


@dataclass(frozen=True)
class Panel:
    """One reconstruction (or the truth) over a region, as shown."""

    amplitude: np.ndarray
    phase: np.ndarray
    aligned: bool


def _wrap(phase: np.ndarray) -> np.ndarray:
    return math.pi - np.mod(math.pi - phase, 2 * math.pi)


def read_product_object(path: Path, sha256: str | None) -> np.ndarray:
    """The complex object (H, W) of a ptychodus product, its bytes checked first; ManifestError naming it."""
    import h5py

    check_sha256(path, sha256)
    try:
        with h5py.File(path, "r") as h5:
            obj = h5.get("object")
            if not isinstance(obj, h5py.Dataset) or obj.ndim != 3 or obj.shape[0] < 1 \
                    or obj.dtype.kind != "c":
                raise ManifestError(f"{path}: no complex 'object' dataset of shape (layers, H, W)")
            if obj.shape[1] * obj.shape[2] > MAX_OBJECT_PIXELS:
                raise ManifestError(f"{path}: object of {obj.shape[1]} x {obj.shape[2]} pixels is larger than "
                                    f"{MAX_OBJECT_PIXELS}")
            return np.asarray(obj[0], dtype=np.complex128)
    except OSError as exc:
        raise ManifestError(f"{path}: not a readable HDF5 product ({exc})") from None


def check_sha256(path: Path, expected: str | None) -> None:
    """Refuse a file whose bytes differ from the sha256 its producer recorded (``None``: nothing recorded)."""
    if expected is None:
        return
    try:
        digest, _ = sha256_file(path)
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    if digest != expected:
        raise ManifestError(f"{path}: sha256 {digest} does not match the recorded {expected}")


def read_truth(path: Path, sha256: str | None = None) -> np.ndarray:
    """``objectGuess`` of a DATA-001 test split (no pickled objects), its bytes checked against ``sha256``
    first; ManifestError naming the file."""
    check_sha256(path, sha256)
    try:
        with np.load(path, allow_pickle=False) as npz:
            truth = npz["objectGuess"]
    except (OSError, ValueError, KeyError) as exc:
        raise ManifestError(f"{path}: cannot read objectGuess ({type(exc).__name__}: {exc})") from None
    if truth.ndim != 2 or truth.dtype.kind != "c":
        raise ManifestError(f"{path}: objectGuess is not a complex 2-D array ({truth.dtype}, {truth.shape})")
    return truth.astype(np.complex128)


def aligned_panel(obj: np.ndarray, truth: np.ndarray, alignment: Alignment | None) -> Panel:
    """The object as scored: amplitude times the recorded scale; phase plus the recorded plane, truth's branch."""
    # The stitch leaves exact zeros where no probe reached; those pixels were never reconstructed.
    unlit = obj == 0
    if alignment is None:
        return Panel(np.where(unlit, np.nan, np.abs(obj)), np.where(unlit, np.nan, np.angle(obj)), aligned=False)
    rows, cols = np.mgrid[: obj.shape[0], : obj.shape[1]]
    gy, gx = alignment.phase_ramp_rad_per_px
    plane = alignment.phase_offset_rad + gy * rows + gx * cols
    truth_phase = np.angle(truth)
    # As the scorer aligns: the reconstruction's phase expressed on the truth's branch.
    phase = truth_phase - _wrap(truth_phase - np.angle(obj) - plane)
    return Panel(np.where(unlit, np.nan, alignment.amplitude_scale * np.abs(obj)), np.where(unlit, np.nan, phase),
                 aligned=True)


def _first_replicate(method: MethodCell) -> Replicate | None:
    """The replicate the grid shows: the lowest seed that has a product and a region."""
    for replicate in method.replicates:
        if replicate.product is not None and replicate.scores.region is not None:
            return replicate
    return None


def method_panel(method: MethodCell, full_truth: np.ndarray) -> tuple[Panel | None, Panel | None, str]:
    """``(reconstruction panel, truth over its region, note)``; panels ``None`` with the reason as note."""
    if method.state != OK:
        return None, None, method.state
    replicate = _first_replicate(method)
    if replicate is None:
        return None, None, "no product"
    region = replicate.scores.region
    obj = read_product_object(replicate.product, replicate.product_sha256)
    crop = (slice(region.row0, region.row1), slice(region.col0, region.col1))
    if obj.shape == full_truth.shape:
        obj = obj[crop]  # a product holding the whole object frame
    truth = full_truth[crop]
    if obj.shape != truth.shape:
        raise ManifestError(f"{replicate.product}: object {obj.shape} matches neither the scored region "
                            f"{region.shape} nor the object frame {full_truth.shape}")
    seed = "" if replicate.seed is None else f", seed {replicate.seed}"
    return (aligned_panel(obj, truth, replicate.scores.alignment),
            Panel(np.abs(truth), np.angle(truth), aligned=True), seed)


def _limits(images: Sequence[np.ndarray]) -> tuple[float, float]:
    """One colour scale for all ``images``: the 1st to 99th percentile of their finite pixels."""
    values = np.concatenate([im[np.isfinite(im)].ravel() for im in images]) if images else np.array([])
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, [1, 99])
    return (float(lo), float(hi)) if hi > lo else (float(lo) - 0.5, float(lo) + 0.5)


def plot_image_grid(cells: Sequence[Cell], view: str, path: Path,
                    data_sha256: Mapping[str, str] | None = None) -> Path:
    """The grid of one view; a missing reconstruction is an empty panel that says why.

    ``data_sha256`` maps a data file's absolute path to the sha256 Phase C/D recorded for it: a test
    split read for its truth is checked against it first.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [c for c in cells if c.view == view]
    grid: list[list[tuple[Panel | None, str]]] = []
    for cell in rows:
        test_path = _test_path(cell)
        recorded = (data_sha256 or {}).get(os.path.normpath(test_path)) if test_path is not None else None
        full_truth = read_truth(test_path, recorded) if test_path is not None else None
        # No scored replicate on either side: each panel says why its method has none.
        pinn, iterative = (None, None, cell.pinn.state), (None, None, cell.iterative.state)
        if full_truth is not None:
            pinn = method_panel(cell.pinn, full_truth)
            iterative = method_panel(cell.iterative, full_truth)
        truth = pinn[1] or iterative[1]
        grid.append([(truth, "truth"), (pinn[0], f"PINN{pinn[2]}" if pinn[0] else f"PINN: {pinn[2]}"),
                     (iterative[0], f"iterative{iterative[2]}" if iterative[0] else f"iterative: {iterative[2]}")])
    amp_lim = _limits([p.amplitude for row in grid for p, _ in row if p is not None])
    phase_lim = _limits([p.phase for row in grid for p, _ in row if p is not None])

    # Panels keep the region's aspect: the figure's height follows it so rows sit without gaps.
    shapes = [p.amplitude.shape for row in grid for p, _ in row if p is not None]
    aspect = float(np.median([h / w for h, w in shapes])) if shapes else 1.0
    panel_w = 2.5
    fig, axes = plt.subplots(len(rows), 6, figsize=(6 * panel_w, len(rows) * (panel_w * aspect + 0.3) + 1.5),
                             squeeze=False)
    mappables = {}
    for r, (cell, row) in enumerate(zip(rows, grid, strict=True)):
        for quantity, offset, lim, cmap in (("amplitude", 0, amp_lim, "gray"), ("phase", 3, phase_lim, "twilight")):
            for c, (panel, title) in enumerate(row):
                ax = axes[r, offset + c]
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0 or panel is None:
                    ax.set_title(f"{title}\n{quantity}" if r == 0 else title, fontsize=9)
                if panel is None:
                    ax.set_facecolor("0.9")
                    ax.text(0.5, 0.5, title.split(": ", 1)[-1], ha="center", va="center", transform=ax.transAxes,
                            fontsize=9, color="0.3")
                    continue
                image = getattr(panel, quantity)
                colours = matplotlib.colormaps[cmap].copy()
                colours.set_bad("0.85")  # pixels no probe reached
                mappables[quantity] = ax.imshow(image, cmap=colours, vmin=lim[0], vmax=lim[1],
                                                interpolation="nearest")
                if not panel.aligned:
                    ax.set_xlabel("not aligned", fontsize=8)
        axes[r, 0].set_ylabel(f"dose {dose_label(cell.dose)}", fontsize=10)
    fig.suptitle(f"{view}: truth, PtychoPINN and the iterative baseline over the scored region "
                 "(one colour scale per quantity)", fontsize=11)
    bottom = 1.1 / fig.get_figheight()  # room for the colour bars, in figure fractions
    fig.tight_layout(rect=(0, bottom, 1, 1 - 0.4 / fig.get_figheight()))
    for quantity, label, x0 in (("amplitude", "amplitude (aligned scale)", 0.06), ("phase", "phase (rad)", 0.55)):
        if quantity in mappables:
            cax = fig.add_axes((x0, 0.55 / fig.get_figheight(), 0.38, 0.12 / fig.get_figheight()))
            fig.colorbar(mappables[quantity], cax=cax, orientation="horizontal", label=label)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _test_path(cell: Cell) -> Path | None:
    """The test split of the cell (both methods reconstruct the same one)."""
    for method in cell.methods:
        for replicate in method.replicates:
            if replicate.test_data_path is not None:
                return replicate.test_data_path
    return None
