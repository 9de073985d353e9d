"""TensorFlow physics layers of PtychoPINN: the framework-free core on TensorFlow tensors.

Every name here is :mod:`fly64_train.core.physics`, the functions the torch backend
runs too (the core recognises TensorFlow tensors and takes its TensorFlow branch:
equal dtypes in products, canvas sizes that follow a traced batch, stateless seeds for
the count split). The support mask stays numpy (the model wraps it in a constant).
"""

from fly64_train.core.physics import *  # noqa: F403  (the core's __all__ is this backend's physics API)
