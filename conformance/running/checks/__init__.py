"""The checks beyond the forward comparison, as an explicit list a run is given.

Each module holds one kind of oracle and reports its own
:class:`~conformance.judging.verdict.Check` lines, separately from the comparison with torch:

* :mod:`.torch_variants` — torch again, with ``channels_last`` tensors and a non-contiguous weight;
* :mod:`.metamorphic` — relations that need no torch at all, run through the implementation under test;
* :mod:`.wiring` — the connectivity probe: which output channels does each input channel reach?

A run (``conformance.running.runner.CaseRunner``) runs :data:`DEFAULT_CHECKS` unless given another
list: ``checks=()`` runs only the forward (and backward) comparison.
"""

from __future__ import annotations

from conformance.running.case_run import ExtraCheck
from conformance.running.checks.metamorphic import metamorphic_checks
from conformance.running.checks.torch_variants import torch_variant_checks
from conformance.running.checks.wiring import wiring_check

DEFAULT_CHECKS: tuple[ExtraCheck, ...] = (torch_variant_checks, metamorphic_checks, wiring_check)
