"""A trained Keras PtychoPINN behind the framework-free :class:`~fly64_train.core.seam.LoadedModel` interface."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from fly64_train.backends.tensorflow.device import tf_device
from fly64_train.backends.tensorflow.model import PtychoPINN
from fly64_train.core.seam import check_model_input
from fly64_train.evaluation.stitch import stitch as numpy_stitch


class TensorflowLoadedModel:
    """Numpy in, the Keras CNN in inference mode on the chosen device, numpy out."""

    def __init__(self, model: PtychoPINN, device: str = "auto") -> None:
        self.device = tf_device(device)
        self.model = model
        """The underlying Keras :class:`PtychoPINN` (the framework-free layers never touch it)."""
        self.gridsize = int(model.cfg.gridsize)
        self.patch_size = int(model.cfg.patch_size)
        self.per_pattern = self.gridsize == 1 or bool(model.cfg.shared_encoder)

    def support(self) -> np.ndarray:
        """The (N, N) float mask of the object region the model predicts."""
        return np.asarray(self.model.forward_model.support, dtype=np.float64)

    def predict_object(self, diffraction: np.ndarray) -> np.ndarray:
        """Object patches (B, C, N, N) complex64 from diffraction amplitudes (B, C, N, N)."""
        check_model_input(diffraction, self.gridsize, self.patch_size)
        with tf.device(self.device):
            out = self.model.predict_object(np.ascontiguousarray(diffraction, dtype=np.float32))
        return out.astype(np.complex64, copy=False)

    def stitch(self, patches: np.ndarray, ycoords: np.ndarray, xcoords: np.ndarray, shape: tuple[int, int],
               weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The numpy stitch (a TensorFlow scatter would add nothing the torch device stitch does not)."""
        return numpy_stitch(patches, ycoords, xcoords, shape, weight)
