"""Binomial split of recorded photon counts into two independent halves (the information score's A and B)."""

from __future__ import annotations

import numpy as np

#: Seed of the evaluation's count split; fixed so every method sees the same halves A and B.
COUNT_SPLIT_SEED = 20231
#: Fraction of each pattern's photons that goes to half A.
COUNT_SPLIT_FRACTION = 0.5


def split_counts(diffraction: np.ndarray, intensity_scale: float, *, fraction: float = COUNT_SPLIT_FRACTION,
                 seed: int = COUNT_SPLIT_SEED, keys: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split DATA-001 diffraction into photon-count halves ``(counts_a, counts_b)``.

    The counts are ``k = round((intensity_scale * diffraction)^2)`` (docs/data.md:
    diffraction is ``sqrt(k) / s``); each photon goes to A with probability
    ``fraction``: ``k_A ~ Binomial(k, fraction)``, ``k_B = k - k_A``. For Poisson
    ``k`` the halves are independent Poisson counts with rates ``fraction * lambda``
    and ``(1 - fraction) * lambda``, so a method fitted on A cannot fit B's noise.

    ``keys`` (one integer per pattern, e.g. ``scan_index``) seed each pattern's
    split on its own, so one position gets the same halves in every view and
    file that holds it; default: the pattern's row.

    Returns
    -------
    (counts_a, counts_b) : two (n, N, N) int32 arrays
    """
    diffraction = np.asarray(diffraction)
    if diffraction.ndim != 3:
        raise ValueError(f"split_counts: diffraction must be (n, N, N), got shape {diffraction.shape}")
    if not 0 < fraction < 1:
        raise ValueError(f"split_counts: fraction must be in (0, 1), got {fraction}")
    if not np.isfinite(intensity_scale) or intensity_scale <= 0:
        raise ValueError(f"split_counts: intensity_scale must be a positive number, got {intensity_scale}")
    n = diffraction.shape[0]
    keys = np.arange(n) if keys is None else np.asarray(keys)
    if keys.shape != (n,):
        raise ValueError(f"split_counts: keys must have one entry per pattern ({n}), got shape {keys.shape}")
    counts_a = np.empty(diffraction.shape, np.int32)
    counts_b = np.empty(diffraction.shape, np.int32)
    for j in range(n):
        counts = np.rint((np.float64(intensity_scale) * diffraction[j].astype(np.float64)) ** 2).astype(np.int64)
        rng = np.random.default_rng([int(seed), int(keys[j])])
        first = rng.binomial(counts, fraction)
        counts_a[j], counts_b[j] = first, counts - first
    return counts_a, counts_b
