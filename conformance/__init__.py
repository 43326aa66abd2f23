"""A conformance harness for grouped convolutions, with torch as the oracle.

Gate your own convolution from Python: ``from conformance import check``;
``assert check(my_conv2d).passed``. See conformance/api.py.
"""

from conformance.api import Report, check  # after the checks are registered
from conformance.cases.errors import CaseError, Problem
from conformance.cases.loader import find_case_files, load_cases, load_file
from conformance.cases.schema import Case, ConvConfig
from conformance.judging.outcomes import ImplementationCrashed, Unsupported
from conformance.running import checks  # noqa: F401 - registers the torch-variant, metamorphic and wiring checks in EXTRA_CHECKS
from conformance.running.implementations import Implementation, load_implementation
from conformance.running.runner import CaseResult, make_tensors, run_case

__all__ = [
    "Case",
    "CaseError",
    "CaseResult",
    "ConvConfig",
    "Implementation",
    "ImplementationCrashed",
    "Problem",
    "Report",
    "Unsupported",
    "check",
    "find_case_files",
    "load_cases",
    "load_file",
    "load_implementation",
    "make_tensors",
    "run_case",
]
