"""TensorFlow physics layers of PtychoPINN: the framework-free core on TensorFlow tensors.

Every name here is :mod:`fly64_train.core.physics`, the functions the torch backend
runs too (the core recognises TensorFlow tensors and takes its TensorFlow branch:
equal dtypes in products, canvas sizes that follow a traced batch, stateless seeds for
the count split). The support mask stays numpy (the model wraps it in a constant).
"""

from fly64_train.core.physics import (  # noqa: F401  (this backend's physics API)
    MERGE_EPS,
    POISSON_EPS,
    VAL_SPLIT_SEED,
    canvas_size,
    counts_of,
    diffracted_intensity,
    extract_from_canvas,
    extract_patches,
    forward_intensity,
    merge_and_reextract,
    merge_patches,
    place_on_canvas,
    poisson_nll,
    poisson_nll_counts,
    split_counts,
    support_mask,
)
