"""Framework backends: the only place torch (and later TensorFlow) is imported."""
