"""The framework-neutral model bundle ``wts.h5.zip``: container, manifest and loading.

``load_bundle`` checks the archive (digest, declared sizes, bounded reads,
per-file sha256), then asks the backend the manifest names (via
:func:`fly64_train.core.seam.get_backend`) to build the model. See docs/bundle.md.
"""

from fly64_train.bundle.container import MANIFEST_NAME, MAX_MEMBER_BYTES, BundleError, BundleFile, WeightFile
from fly64_train.bundle.load import BundleContents, load_bundle, load_contents, read_bundle, read_manifest
from fly64_train.bundle.manifest import (
    BUNDLE_NAME,
    FORMAT,
    FORMAT_VERSION,
    BundleHeader,
    BundleManifest,
    ModelEntry,
    format_major,
)
from fly64_train.bundle.write import write_bundle, write_model_bundle

__all__ = [
    "BUNDLE_NAME", "FORMAT", "FORMAT_VERSION", "MANIFEST_NAME", "MAX_MEMBER_BYTES", "BundleContents", "BundleError",
    "BundleFile", "BundleHeader", "BundleManifest", "ModelEntry", "WeightFile", "format_major", "load_bundle",
    "load_contents", "read_bundle", "read_manifest", "write_bundle", "write_model_bundle",
]
