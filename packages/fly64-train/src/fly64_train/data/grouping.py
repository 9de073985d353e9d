"""Splitting groups into training and validation groups.

The grouping rule itself (which positions make a group: :class:`fly64_data.grouping.Groups`,
:func:`fly64_data.grouping.make_groups`) belongs to fly64-data, so the overlap metrics measure
the very groups trained on; this module holds what only training needs, the train/validation split.
"""

from __future__ import annotations

import numpy as np

from fly64_data.grouping import Groups


def split_groups(groups: Groups, val_fraction: float, seed: int) -> tuple[Groups, Groups | None]:
    """Train and validation groups: the one split rule every backend uses.

    A seeded permutation holds out ``round(val_fraction * G)`` groups (at least one when
    ``val_fraction > 0`` and there are two groups or more); both parts keep file order, so
    the same seed gives the same rows whichever framework trains.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(groups))
    n_val = max(1, int(round(val_fraction * len(groups)))) if val_fraction > 0 and len(groups) > 1 else 0
    train = groups.subset(np.sort(order[n_val:]))
    return train, (groups.subset(np.sort(order[:n_val])) if n_val else None)
