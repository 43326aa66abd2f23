"""A conformance harness for grouped 2-D convolution, with torch.nn.Conv2d as the oracle."""
from .errors import CaseError, Problem
from .implementations import Implementation, load_implementation
from .loader import find_case_files, load_cases, load_file
from .runner import CaseResult, make_tensors, run_case
from .schema import Case, ConvConfig
from . import checks  # noqa: E402,F401 - registers the torch-variant, metamorphic and wiring checks in EXTRA_CHECKS

__all__ = ["Case", "CaseError", "CaseResult", "ConvConfig", "Implementation", "Problem", "find_case_files",
           "load_cases", "load_file", "load_implementation", "make_tensors", "run_case"]
