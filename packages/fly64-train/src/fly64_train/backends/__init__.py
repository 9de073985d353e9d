"""Framework backends of the PtychoPINN model (torch, tensorflow)."""
