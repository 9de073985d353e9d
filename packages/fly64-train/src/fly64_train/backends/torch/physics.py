"""Torch physics layers of PtychoPINN, built on the shared convention.

Every translation, FFT and shift here is a call into :mod:`fly64_data.physics`
with ``xp=torch``, so the model and the simulator cannot drift apart: a patch
pixel ``[N/2, N/2]`` is its scan position, sub-pixel translation is bilinear
resampling with zeros outside, and the far field is the unitary, fftshifted FFT.

gs2 merge
---------
A group's ``C`` patches sit at ``offsets`` (dy, dx) relative to the group
centroid. The canvas has size ``M = N + 2 * pad`` with its pixel ``[M/2, M/2]``
at the centroid, so patch ``c`` is placed by sampling it at origin
``N/2 - M/2 - off_c`` and re-extracted by sampling the canvas at origin
``off_c + M/2 - N/2``. The merged canvas is
``sum_c place(O_c * w) / sum_c place(w)`` with the *same* placed weights ``w``
(the support) in numerator and denominator, so consistent patches merge back
to themselves wherever the support covers them.
"""

from __future__ import annotations

import math

import torch

from fly64_data import physics as conv

#: Denominator floor of the merge; below it a canvas pixel counts as uncovered.
MERGE_EPS = 1e-6
#: Keeps log(lambda) finite where the model predicts no photons.
POISSON_EPS = 1e-8


def extract_patches(obj: torch.Tensor, ycoords: torch.Tensor, xcoords: torch.Tensor, n: int) -> torch.Tensor:
    """Patches of ``obj[..., H, W]`` centred at the scan positions (torch twin of the simulator's)."""
    return conv.resample(obj, conv.patch_origin(ycoords, n), conv.patch_origin(xcoords, n), n, xp=torch)


def support_mask(n: int, fraction: float = 0.5, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Central square of side ``fraction * N`` (ones) in an N x N frame (zeros)."""
    side = int(round(fraction * n))
    lo = (n - side) // 2
    mask = torch.zeros((n, n), dtype=dtype)
    mask[lo:lo + side, lo:lo + side] = 1.0
    return mask


def canvas_size(offsets: torch.Tensor, n: int) -> int:
    """Even canvas side ``M = N + 2 * pad`` with ``pad`` from the largest |offset|, so nothing falls off."""
    reach = float(offsets.abs().max()) if offsets.numel() else 0.0
    return n + 2 * (int(math.ceil(reach)) + 1)


def place_on_canvas(patches: torch.Tensor, offsets: torch.Tensor, m: int) -> torch.Tensor:
    """Translate ``patches[B, C, N, N]`` onto ``M x M`` canvases (one per patch, not summed)."""
    n = patches.shape[-1]
    offsets = offsets.double()  # coordinates in float64, as resample forms them (and as TensorFlow does)
    oy = n // 2 - m // 2 - offsets[..., 0]
    ox = n // 2 - m // 2 - offsets[..., 1]
    return conv.resample(patches, oy, ox, m, xp=torch)


def extract_from_canvas(canvas: torch.Tensor, offsets: torch.Tensor, n: int) -> torch.Tensor:
    """Cut ``C`` patches of size N out of ``canvas[B, M, M]`` at ``offsets[B, C, 2]``."""
    m = canvas.shape[-1]
    offsets = offsets.double()
    oy = offsets[..., 0] + m // 2 - n // 2
    ox = offsets[..., 1] + m // 2 - n // 2
    return conv.resample(canvas.unsqueeze(1), oy, ox, n, xp=torch)


def merge_patches(patches: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor,
                  m: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge a group's patches into one canvas with identical weights above and below the line.

    Parameters
    ----------
    patches : (B, C, N, N) complex tensor
    offsets : (B, C, 2) real tensor, (dy, dx) of each patch centre relative to the group centroid
    weights : (N, N) real tensor, the support each patch contributes with
    m : int, optional
        Canvas side; defaults to :func:`canvas_size`.

    Returns
    -------
    canvas : (B, M, M) complex tensor
    coverage : (B, M, M) real tensor, the summed placed weights (0 where nothing covers)
    """
    n = patches.shape[-1]
    m = canvas_size(offsets, n) if m is None else m
    offsets = offsets.to(weights.dtype)
    placed_w = place_on_canvas(weights.expand(patches.shape).contiguous(), offsets, m)
    placed = place_on_canvas(patches * weights, offsets, m)
    coverage = placed_w.sum(dim=1)
    return placed.sum(dim=1) / coverage.clamp_min(MERGE_EPS), coverage


def merge_and_reextract(patches: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor,
                        m: int | None = None) -> torch.Tensor:
    """The gs2 object constraint: each patch becomes the consensus of its group (canvas side ``m``,
    default :func:`canvas_size`; any larger even side gives the same patches)."""
    canvas, _ = merge_patches(patches, offsets, weights, m)
    return extract_from_canvas(canvas, offsets.to(weights.dtype), patches.shape[-1])


def diffracted_intensity(obj_patches: torch.Tensor, probe: torch.Tensor) -> torch.Tensor:
    """Noiseless far-field intensity of the exit waves ``probe * obj_patches``."""
    return conv.far_field_intensity(probe * obj_patches, xp=torch)


def forward_intensity(obj_patches: torch.Tensor, probe: torch.Tensor, offsets: torch.Tensor | None,
                      weights: torch.Tensor, canvas_side: int | None = None) -> torch.Tensor:
    """Object patches -> predicted intensities, merging groups of more than one patch first."""
    if obj_patches.shape[1] > 1:
        if offsets is None:
            raise ValueError("groups of more than one patch need their offsets for the merge")
        obj_patches = merge_and_reextract(obj_patches, offsets, weights, canvas_side)
    return diffracted_intensity(obj_patches, probe)


def counts_of(diffraction: torch.Tensor, intensity_scale: float | torch.Tensor) -> torch.Tensor:
    """Photon counts ``k = (s * diffraction)^2`` of DATA-001 diffraction amplitudes."""
    return (diffraction * intensity_scale) ** 2


def poisson_nll_counts(intensity: torch.Tensor, counts: torch.Tensor, rate_scale: float | torch.Tensor,
                       eps: float = POISSON_EPS) -> torch.Tensor:
    """Mean Poisson NLL of ``counts`` under the rate ``lambda = rate_scale * intensity`` (log k! dropped)."""
    lam = intensity * rate_scale
    return (lam - counts * torch.log(lam + eps)).mean()


def poisson_nll(intensity: torch.Tensor, diffraction: torch.Tensor, intensity_scale: float | torch.Tensor,
                eps: float = POISSON_EPS) -> torch.Tensor:
    """Mean Poisson negative log-likelihood in photon counts (constant log k! dropped).

    Predicted counts ``lambda = s^2 * intensity`` and observed counts
    ``k = (s * diffraction)^2``, with ``s`` the dataset's recorded
    ``intensity_scale`` (fixed, never learned).
    """
    return poisson_nll_counts(intensity, counts_of(diffraction, intensity_scale), intensity_scale**2, eps)


def split_counts(diffraction: torch.Tensor, intensity_scale: float | torch.Tensor, fraction: float,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Split each pattern's photons into two independent halves by binomial thinning.

    Each of the ``k`` counts of a pixel goes to the first part with probability
    ``fraction``: ``k1 ~ Binomial(k, fraction)``, ``k2 = k - k1``. For Poisson
    ``k`` with mean ``lambda`` the parts are *independent* Poisson variables with
    means ``fraction * lambda`` and ``(1 - fraction) * lambda``. A network fed
    ``k1`` and scored on ``k2`` therefore cannot reproduce the noise of the
    counts it is scored on: the best it can do is the true mean intensity.

    Returns
    -------
    (input_diffraction, target_counts)
        ``input_diffraction = sqrt(k1 / fraction) / s`` (diffraction amplitudes on
        the full pattern's scale, so the encoder sees the usual range) and
        ``target_counts = k2``, whose rate is ``(1 - fraction) * s^2 * intensity``.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"count split fraction must be in (0, 1), got {fraction}")
    counts = torch.round(counts_of(diffraction, intensity_scale))
    first = torch.binomial(counts, torch.full_like(counts, fraction), generator=generator)
    return torch.sqrt(first / fraction) / intensity_scale, counts - first
