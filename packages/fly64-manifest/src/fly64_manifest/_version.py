"""The package version, in a module of its own so that modules below ``__init__`` can name it."""

__version__ = "0.4.0"
