"""fly64 study: design, NPZ data contract, base sample and Phase C dose simulation."""

from fly64_data.contract import ContractError, read_metadata, validate_dataset, write_dataset
from fly64_data.design import StudyDesign, dose_dirname, get_study_design

__version__ = "0.1.0"

__all__ = [
    "ContractError", "StudyDesign", "dose_dirname", "get_study_design", "read_metadata",
    "validate_dataset", "write_dataset", "__version__",
]
