"""Reconstruct a scan from a trained model: predict patches, stitch, score.

This is the minimal reconstruction used to check training quality; the full
Phase E+ evaluation (PSNR, MS-SSIM, FRC, figures) builds on it.

Stitching places each predicted patch in the object frame with the probe
intensity ``|P|^2`` (times the model's support) as weight, using the shared
bilinear convention: a patch centred at ``(y, x)`` covers object pixels
``y - N/2 + i``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from fly64_data.physics import resample
from fly64_train.dataset import open_dataset
from fly64_train.grouping import make_groups
from fly64_train.model import PtychoPINN


@torch.no_grad()
def predict_patches(model: PtychoPINN, path: str | os.PathLike, neighbor_count: int = 7,
                    grouping_seed: int = 123, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Object patch at every position of a dataset (gs2: each position predicted as a group seed).

    Returns ``(patches (n, N, N) complex64, ycoords, xcoords)``.
    """
    info = open_dataset(path, model.cfg.gridsize, neighbor_count)
    groups = make_groups(info.ycoords, info.xcoords, model.cfg.gridsize, neighbor_count, None, grouping_seed)
    out = np.empty((info.n, info.patch_size, info.patch_size), np.complex64)
    model.eval()
    device = next(model.parameters()).device
    for start in range(0, len(groups), batch_size):
        idx = groups.indices[start:start + batch_size]
        diff = np.stack([info.diffraction.read_rows(row) for row in idx])
        obj = model.predict_object(torch.from_numpy(diff).to(device))[:, 0].cpu().numpy()
        out[idx[:, 0]] = obj  # column 0 is the seed: every position exactly once
    return out, info.ycoords, info.xcoords


def stitch(patches: np.ndarray, ycoords: np.ndarray, xcoords: np.ndarray, shape: tuple[int, int],
           weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted average of patches in an object frame of ``shape``; returns (image, summed weight)."""
    n = patches.shape[-1]
    num = np.zeros(shape, np.complex128)
    den = np.zeros(shape, np.float64)
    for patch, y, x in zip(patches, ycoords, xcoords, strict=True):
        oy, ox = y - n / 2, x - n / 2
        r0, c0 = int(np.floor(oy)), int(np.floor(ox))
        # Window pixel i is object pixel r0 + i, i.e. patch coordinate i - (oy - r0).
        fy, fx = oy - r0, ox - c0
        w = resample(weight.astype(np.float64), -fy, -fx, n + 1)
        v = resample((patch * weight).astype(np.complex128), -fy, -fx, n + 1)
        rs = slice(max(r0, 0), min(r0 + n + 1, shape[0]))
        cs = slice(max(c0, 0), min(c0 + n + 1, shape[1]))
        wr = slice(rs.start - r0, rs.stop - r0)
        wc = slice(cs.start - c0, cs.stop - c0)
        num[rs, cs] += v[wr, wc]
        den[rs, cs] += w[wr, wc]
    img = np.where(den > 1e-3 * den.max(), num / np.maximum(den, 1e-12), 0)
    return img, den


def ssim(a: np.ndarray, b: np.ndarray, data_range: float, sigma: float = 1.5) -> float:
    """Mean SSIM with a Gaussian window (Wang et al. 2004 constants)."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = ndimage.gaussian_filter(a, sigma), ndimage.gaussian_filter(b, sigma)
    saa = ndimage.gaussian_filter(a * a, sigma) - mu_a**2
    sbb = ndimage.gaussian_filter(b * b, sigma) - mu_b**2
    sab = ndimage.gaussian_filter(a * b, sigma) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
    return float(s.mean())


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


@dataclass
class AmplitudeScores:
    pearson: float
    mae: float
    ssim: float
    flat_mae: float
    flat_ssim: float
    phase_pearson: float
    phase_mae: float

    def beats_flat(self) -> bool:
        return self.mae < self.flat_mae and self.ssim > self.flat_ssim

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def score_reconstruction(recon: np.ndarray, truth: np.ndarray) -> AmplitudeScores:
    """Amplitude (global scale removed) and phase (offset and ramp removed) scores on a region.

    The flat baseline is the constant mean ground-truth amplitude (the best
    constant a reconstruction-free guess could make).
    """
    amp, amp_true = np.abs(recon).astype(np.float64), np.abs(truth).astype(np.float64)
    scale = float((amp * amp_true).sum() / max((amp * amp).sum(), 1e-30))
    amp = amp * scale
    rng = float(amp_true.max() - amp_true.min()) or 1.0
    flat = np.full_like(amp_true, amp_true.mean())
    # Phase: remove the global offset, then a least-squares ramp of the residual.
    offset = np.angle(np.sum(truth * np.conj(recon)))
    phase = np.angle(recon * np.exp(1j * offset))
    yy, xx = np.mgrid[: truth.shape[0], : truth.shape[1]]
    design = np.column_stack([yy.ravel(), xx.ravel(), np.ones(yy.size)])
    resid = np.angle(np.exp(1j * (np.angle(truth) - phase))).ravel()
    coef, *_ = np.linalg.lstsq(design, resid, rcond=None)
    phase = phase + (design @ coef).reshape(phase.shape)
    phase_true = np.angle(truth)
    return AmplitudeScores(
        pearson=pearson(amp, amp_true), mae=float(np.abs(amp - amp_true).mean()), ssim=ssim(amp, amp_true, rng),
        flat_mae=float(np.abs(flat - amp_true).mean()), flat_ssim=ssim(flat, amp_true, rng),
        phase_pearson=pearson(phase, phase_true),
        phase_mae=float(np.abs(np.angle(np.exp(1j * (phase - phase_true)))).mean()),
    )


def reconstruct_and_score(model: PtychoPINN, test_path: str | os.PathLike, neighbor_count: int = 7,
                          grouping_seed: int = 123) -> tuple[AmplitudeScores, np.ndarray, np.ndarray]:
    """Predict, stitch and score a test split against its ``objectGuess`` on the scanned region."""
    patches, y, x = predict_patches(model, test_path, neighbor_count, grouping_seed)
    info = open_dataset(test_path, 1)
    truth = info.readers["objectGuess"].read_all()
    weight = (np.abs(info.probe) ** 2) * model.support.cpu().numpy()
    image, _ = stitch(patches, y, x, truth.shape, weight)
    rows = slice(int(np.ceil(y.min())), int(np.floor(y.max())) + 1)
    cols = slice(int(np.ceil(x.min())), int(np.floor(x.max())) + 1)
    return score_reconstruction(image[rows, cols], truth[rows, cols]), image[rows, cols], truth[rows, cols]
