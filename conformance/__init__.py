"""A conformance harness for grouped convolutions, with torch as the oracle.

Gate your own convolution from Python: ``from conformance import check``;
``assert check(my_conv2d).passed``. See conformance/api.py.
"""
from .errors import CaseError, Problem
from .implementations import Implementation, load_implementation
from .loader import find_case_files, load_cases, load_file
from .outcomes import ImplementationCrashed, Unsupported
from .runner import CaseResult, make_tensors, run_case
from .schema import Case, ConvConfig
from . import checks  # noqa: E402,F401 - registers the torch-variant, metamorphic and wiring checks in EXTRA_CHECKS
from .api import Report, check  # noqa: E402 - after the checks are registered

__all__ = ["Case", "CaseError", "CaseResult", "ConvConfig", "Implementation", "ImplementationCrashed", "Problem",
           "Report", "Unsupported", "check", "find_case_files", "load_cases", "load_file", "load_implementation",
           "make_tensors", "run_case"]
