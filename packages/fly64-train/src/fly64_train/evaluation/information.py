"""The information score of a trained model (docs/evaluation.md, "The information score").

The model predicts every test patch from half A of each pattern's photons and the
stitched object is scored on half B between the flat object (0) and the true object (1)
(:class:`fly64_train.evaluation.metrics.InformationScore`). Framework-free: the model is any
backend's ``LoadedModel``. Like the rest of the evaluation, diffraction is read a batch of
rows at a time, never whole: each pattern's split is seeded by its ``scan_index``, so the
halves of a row are the same whenever it is read.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from fly64_train.evaluation.metrics import COUNT_SPLIT_FRACTION, InformationScore, poisson_nll, split_counts

if TYPE_CHECKING:
    from fly64_train.core.seam import LoadedModel
    from fly64_train.data.reader import DatasetInfo

#: The stitch leaves pixels whose summed weight is below this share of its maximum at 0 (no data there);
#: the information score treats them as not reconstructed (docs/evaluation.md).
STITCH_WEIGHT_CUT = 1e-3
#: Patterns split and scored per step (bounds the memory of the counts and the forward model).
CHUNK = 256


def unreached_as_nan(image: np.ndarray, summed: np.ndarray) -> np.ndarray:
    """``image`` with NaN where the stitch's summed weight is below :data:`STITCH_WEIGHT_CUT` of its maximum.

    Those pixels hold nothing a scan reconstructed: the information score (and a fit started from the
    image) treat them as not reconstructed.
    """
    return np.where(summed > STITCH_WEIGHT_CUT * summed.max(), image, np.nan)


class _Halves:
    """Halves A and B of a test file's patterns, made from the file's rows on demand."""

    def __init__(self, info: DatasetInfo, fraction: float) -> None:
        self.info, self.fraction = info, fraction
        self.keys = (info.readers["scan_index"].read_all() if "scan_index" in info.readers
                     else np.arange(info.n))

    def __call__(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.asarray(rows)
        return split_counts(self.info.diffraction.read_rows(rows), self.info.intensity_scale,
                            fraction=self.fraction, keys=self.keys[rows])

    def seen(self, rows: np.ndarray) -> np.ndarray:
        """Half A as the network's input: ``sqrt(k_A / fraction) / s``, the full pattern's amplitude scale."""
        counts_a, _ = self(rows)
        return (np.sqrt(counts_a / self.fraction) / self.info.intensity_scale).astype(np.float32)


def half_a_prediction(model: LoadedModel, info: DatasetInfo, *, neighbor_count: int, grouping_seed: int,
                      batch_size: int = 32, fraction: float = COUNT_SPLIT_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """The model's stitched object predicted from half A of each pattern's photons, and its summed weight.

    What the information score scores on half B; also the start a "PINN + LSQML" fit of half A takes
    (fly64_iterative.pinn_start), so neither sees half B. ``info`` is an opened split.
    """
    from fly64_train.evaluation.predict import predict_patches

    halves = _Halves(info, fraction)
    predicted = predict_patches(model, info, neighbor_count=neighbor_count, grouping_seed=grouping_seed,
                                batch_size=batch_size, patterns=halves.seen)
    shape = info.readers["objectGuess"].shape
    weight = (np.abs(info.probe).astype(np.float64) ** 2) * model.support().astype(np.float64)
    return model.stitch(predicted.patches, predicted.ycoords, predicted.xcoords, shape, weight)


def model_information(model: LoadedModel, test_path: str | os.PathLike | DatasetInfo, *, neighbor_count: int,
                      grouping_seed: int, batch_size: int = 32,
                      fraction: float = COUNT_SPLIT_FRACTION, chunk: int = CHUNK) -> InformationScore:
    """Predict ``test_path`` from half A of its photons, stitch, and score the object on half B.

    Half A is fed as ``sqrt(k_A / fraction) / s``: the full pattern's amplitude scale, which is
    what the network sees in training with the photon split on (``count_split``: ``sqrt(k_1 /
    count_split) / s``) and off (``sqrt(k) / s``). The result equals
    :func:`fly64_train.evaluation.metrics.information_score` on the whole arrays; ``chunk``
    patterns are split and scored at a time.
    """
    from fly64_train.data.reader import dataset_of

    info = dataset_of(test_path, model.gridsize, neighbor_count)  # an opened split is not opened again
    halves = _Halves(info, fraction)
    truth = info.readers["objectGuess"].read_all()
    image, summed = half_a_prediction(model, info, neighbor_count=neighbor_count, grouping_seed=grouping_seed,
                                      batch_size=batch_size, fraction=fraction)
    chunks = [np.arange(start, min(start + chunk, info.n)) for start in range(0, info.n, chunk)]
    total_a = sum(float(halves(rows)[0].sum(dtype=np.float64)) for rows in chunks)
    amplitude = InformationScore.flat_constant(total_a, info.n, probe=info.probe,
                                               intensity_scale=info.intensity_scale, fraction=fraction)
    objects = (InformationScore.filled(unreached_as_nan(image, summed), amplitude),
               np.full(truth.shape, amplitude, np.complex128), truth)
    totals = np.zeros(3)
    for rows in chunks:
        _, counts_b = halves(rows)
        for k, obj in enumerate(objects):
            totals[k] += poisson_nll(obj, counts_b, probe=info.probe, ycoords=info.ycoords[rows],
                                     xcoords=info.xcoords[rows], intensity_scale=info.intensity_scale,
                                     fraction=1.0 - fraction).sum()
    return InformationScore.from_nll(*map(float, totals), flat_amplitude=amplitude, patterns=info.n)
