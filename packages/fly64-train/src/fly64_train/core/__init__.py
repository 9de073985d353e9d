"""The framework-free core of fly64-train: conventions every backend runs, importing no framework.

It is the bottom layer of the package (the import-linter contracts in ``.importlinter``):
backends, data, training, bundle and evaluation may import it; it imports none of them.
"""
