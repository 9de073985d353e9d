"""Schemas, typed read-only loaders and verification for the fly64 study's JSON artifacts.

Depends on jsonschema only (no numpy or torch), so comparison code can import it anywhere::

    from fly64_manifest import Study
    study = Study("study")
    for job in study.jobs: ...
    problems = study.verify()
"""

from fly64_manifest._version import __version__
from fly64_manifest.backend_names import BACKENDS, DEFAULT_BACKEND, backend_name
from fly64_manifest.io import ManifestError, atomic_write, parse_json, read_json, sha256_file
from fly64_manifest.loaders import (
    load_iterative_manifest,
    load_overlap_manifest,
    load_overlap_metrics,
    load_run_manifest,
    load_skip_summary,
    load_training_manifest,
)
from fly64_manifest.models import (
    DoseData,
    FileRecord,
    IterativeJob,
    IterativeManifest,
    OverlapManifest,
    OverlapView,
    Producer,
    RunManifest,
    SkippedView,
    SkipSummary,
    TrainingJob,
    TrainingManifest,
)
from fly64_manifest.safe_paths import (
    UnsafePathError,
    ensure_dir,
    inside_root,
    locked,
    open_append,
    open_lock,
    refuse_foreign_root,
    refuse_output_in_input,
    remove_tree,
)
from fly64_manifest.schema import KINDS, load_schema, schema_version, validate, write_json
from fly64_manifest.scores import (
    Alignment,
    Information,
    MetricSet,
    ReconstructionTiming,
    RefineSettings,
    Region,
    Scores,
)
from fly64_manifest.study import Lineage, Study
from fly64_manifest.verify import Problem, verify

__all__ = [
    "Alignment", "Information", "MetricSet", "ReconstructionTiming", "RefineSettings", "Region", "Scores",
    "BACKENDS", "DEFAULT_BACKEND", "backend_name",
    "KINDS", "DoseData", "FileRecord", "IterativeJob", "IterativeManifest", "Lineage", "ManifestError",
    "OverlapManifest", "OverlapView", "Problem", "Producer", "RunManifest", "SkipSummary", "SkippedView", "Study",
    "TrainingJob", "TrainingManifest", "UnsafePathError", "__version__", "atomic_write", "ensure_dir",
    "inside_root", "load_iterative_manifest", "load_overlap_manifest", "load_overlap_metrics", "load_run_manifest",
    "load_schema", "load_skip_summary", "load_training_manifest", "locked", "open_append", "open_lock", "parse_json",
    "read_json", "refuse_foreign_root", "refuse_output_in_input", "remove_tree", "schema_version", "sha256_file",
    "validate", "verify", "write_json",
]
