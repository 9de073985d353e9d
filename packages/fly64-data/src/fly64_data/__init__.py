"""fly64 study: design, NPZ data contract, base sample and Phase C dose simulation."""

from fly64_data.contract import ContractError, load_dataset, read_metadata, validate_dataset, write_dataset
from fly64_data.design import StudyDesign, dose_dirname, get_study_design
from fly64_data.npz_reader import NpyHeader, NpzError, npz_headers, read_npz

__version__ = "0.3.0"

__all__ = [
    "ContractError", "NpyHeader", "NpzError", "StudyDesign", "dose_dirname", "get_study_design", "load_dataset",
    "npz_headers", "read_metadata", "read_npz", "validate_dataset", "write_dataset", "__version__",
]
