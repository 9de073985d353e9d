"""The framework implementations behind the seam (:mod:`fly64_train.core.seam`): one sub-package each.

``torch`` (PyTorch + Lightning) and ``tensorflow`` (Keras 3) mirror each other module by module. Each is
imported only through :func:`fly64_train.core.seam.get_backend`, so importing this package imports no
framework. The backends sit above evaluation, bundle, training, data and core (they use the stitch, the
bundle writer and the training code); none of those imports a backend (``.importlinter``).
"""
