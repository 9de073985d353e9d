"""Framework-free training configuration shared by every backend."""
