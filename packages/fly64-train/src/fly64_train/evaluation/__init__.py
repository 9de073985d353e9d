"""Stitching, alignment, quality metrics and figures."""
