"""The PyTorch + Lightning backend."""
