"""Phase G of the fly64 study: PtychoPINN (and "PINN + refine" where run) against the iterative baseline.

Downstream code in the sense of docs/downstream.md: it reads the training and iterative
manifests through :mod:`fly64_manifest` and the reconstruction products with h5py, and imports
neither fly64-train nor any deep-learning framework (an import-linter contract keeps it so)::

    from fly64_compare import CompareConfig, compare
    result = compare(CompareConfig(phase_e_root="study/phase_e", phase_f_root="study/phase_f",
                                   output="study/compare"))
"""

from fly64_compare.cells import Cell, MethodCell, Replicate, collect
from fly64_compare.run import CompareConfig, CompareResult, compare
from fly64_compare.stats import Summary, Verdict, refine_verdict, summarize, verdict, verdict_among

__version__ = "0.3.0"

__all__ = ["Cell", "CompareConfig", "CompareResult", "MethodCell", "Replicate", "Summary", "Verdict",
           "__version__", "collect", "compare", "refine_verdict", "summarize", "verdict", "verdict_among"]
