"""A conformance harness for grouped convolutions, with torch as the oracle.

Gate your own convolution from Python: ``from conformance import check``;
``assert check(my_conv2d).passed``. See conformance/api.py.

Importing the package is light (no torch): each public name below is imported from its module
on first use (PEP 562), so ``conformance validate`` and the pytest plugin's start-up never load torch.

>>> import conformance
>>> conformance.Case.__name__
'Case'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Each public name and the module that defines it.
_LAZY = {
    "Case": "conformance.cases.schema",
    "ConvConfig": "conformance.cases.schema",
    "CaseError": "conformance.cases.errors",
    "Problem": "conformance.cases.errors",
    "find_case_files": "conformance.cases.loader",
    "load_cases": "conformance.cases.loader",
    "load_file": "conformance.cases.loader",
    "make_tensors": "conformance.cases.case_tensors",
    "ImplementationCrashed": "conformance.judging.outcomes",
    "Unsupported": "conformance.judging.outcomes",
    "CaseResult": "conformance.judging.verdict",
    "Implementation": "conformance.running.implementations",
    "load_implementation": "conformance.running.implementations",
    "run_case": "conformance.running.runner",
    "Report": "conformance.api",
    "check": "conformance.api",
    "explain": "conformance.notebook",
}

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
    "explain",
    "find_case_files",
    "load_cases",
    "load_file",
    "load_implementation",
    "make_tensors",
    "run_case",
]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from conformance.api import Report, check
    from conformance.cases.case_tensors import make_tensors
    from conformance.cases.errors import CaseError, Problem
    from conformance.cases.loader import find_case_files, load_cases, load_file
    from conformance.cases.schema import Case, ConvConfig
    from conformance.judging.outcomes import ImplementationCrashed, Unsupported
    from conformance.judging.verdict import CaseResult
    from conformance.notebook import explain
    from conformance.running.implementations import Implementation, load_implementation
    from conformance.running.runner import run_case


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'conformance' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
