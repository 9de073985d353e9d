"""The information score of a trained model (docs/evaluation.md, "The information score").

The model predicts every test patch from half A of each pattern's photons and the
stitched object is scored on half B with
:func:`fly64_train.evaluation.metrics.information_score`, between the flat object (0)
and the true object (1). Framework-free: the model is any backend's ``LoadedModel``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from fly64_train.evaluation.metrics import COUNT_SPLIT_FRACTION, InformationScore, information_score, split_counts

if TYPE_CHECKING:
    from fly64_train.backends import LoadedModel

#: The stitch leaves pixels whose summed weight is below this share of its maximum at 0 (no data there);
#: the information score treats them as not reconstructed (docs/evaluation.md).
STITCH_WEIGHT_CUT = 1e-3


def model_information(model: LoadedModel, test_path: str | os.PathLike, *, neighbor_count: int,
                      grouping_seed: int, batch_size: int = 32,
                      fraction: float = COUNT_SPLIT_FRACTION) -> InformationScore:
    """Predict ``test_path`` from half A of its photons, stitch, and score the object on half B.

    Half A is fed as ``sqrt(k_A / fraction) / s``: the full pattern's amplitude scale, which is
    what the network sees in training with the photon split on (``count_split``: ``sqrt(k_1 /
    count_split) / s``) and off (``sqrt(k) / s``).
    """
    from fly64_train.data.reader import open_dataset
    from fly64_train.evaluation.predict import predict_patches

    info = open_dataset(test_path, model.gridsize, neighbor_count)
    s = info.intensity_scale
    keys = info.readers["scan_index"].read_all() if "scan_index" in info.readers else None
    counts_a, counts_b = split_counts(info.diffraction.read_all(), s, fraction=fraction, keys=keys)
    seen = (np.sqrt(counts_a / fraction) / s).astype(np.float32)
    predicted = predict_patches(model, test_path, neighbor_count=neighbor_count, grouping_seed=grouping_seed,
                                batch_size=batch_size, patterns=seen)
    del seen
    truth = info.readers["objectGuess"].read_all()
    weight = (np.abs(info.probe).astype(np.float64) ** 2) * model.support().astype(np.float64)
    image, summed = model.stitch(predicted.patches, predicted.ycoords, predicted.xcoords, truth.shape, weight)
    recon = np.where(summed > STITCH_WEIGHT_CUT * summed.max(), image, np.nan)
    return information_score(recon, truth, counts_a, counts_b, probe=info.probe, ycoords=info.ycoords,
                             xcoords=info.xcoords, intensity_scale=s, fraction=fraction)
