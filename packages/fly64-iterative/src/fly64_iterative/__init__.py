"""Phase F of the fly64 study: pty-chi's iterative reconstruction of every test split Phase E scores.

``fly64-iterative run`` (or ``python -m fly64_iterative run``) reconstructs each dose x view
job's test split with pty-chi (LSQML by default; ePIE and DM) from a flat start with the
simulation's probe fixed and exact positions, scores it with Phase E's scorer and records
everything in ``iterative_manifest.json`` (schema in fly64-manifest). pty-chi is imported
only when a reconstruction runs, so ``--help`` and the manifest code stay light.
"""

__version__ = "0.3.0"
