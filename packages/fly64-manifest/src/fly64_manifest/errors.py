"""The error every fly64-manifest reader raises: the lowest module of the package (it imports none of it)."""


class ManifestError(ValueError):
    """A JSON artifact is missing, unreadable or does not match its schema."""
