"""fly64 Phase D: overlap views (minimum-spacing selection) and measured overlap."""

__version__ = "0.3.0"

from fly64_overlap.metrics import MetricsConfig, disc_overlap_fraction, measure_overlap  # noqa: E402
from fly64_overlap.probe import ProbeDiameter, measure_probe_diameter  # noqa: E402
from fly64_overlap.selection import Selection, select_min_spacing  # noqa: E402
from fly64_overlap.views import OverlapConfig, OverlapError, build_views  # noqa: E402

__all__ = [
    "MetricsConfig", "OverlapConfig", "OverlapError", "ProbeDiameter", "Selection", "__version__",
    "build_views", "disc_overlap_fraction", "measure_overlap", "measure_probe_diameter", "select_min_spacing",
]
