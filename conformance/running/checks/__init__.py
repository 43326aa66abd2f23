"""Checks beyond the forward comparison, registered in ``runner.EXTRA_CHECKS``.

Each module holds one kind of oracle and reports its own :class:`~conformance.running.runner.Check` lines,
separately from the comparison with torch:

* :mod:`.torch_variants` — torch again, with ``channels_last`` tensors and a non-contiguous weight;
* :mod:`.metamorphic` — relations that need no torch at all, run through the implementation under test;
* :mod:`.wiring` — the connectivity probe: which output channels does each input channel reach?
"""

from __future__ import annotations

from conformance.running.checks.metamorphic import metamorphic_checks
from conformance.running.checks.torch_variants import torch_variant_checks
from conformance.running.checks.wiring import wiring_check
from conformance.running.runner import EXTRA_CHECKS

DEFAULT_CHECKS = (torch_variant_checks, metamorphic_checks, wiring_check)


def register_default_checks() -> None:
    """Add the default checks to ``runner.EXTRA_CHECKS`` once (importing this package does it)."""
    for check in DEFAULT_CHECKS:
        if check not in EXTRA_CHECKS:
            EXTRA_CHECKS.append(check)


register_default_checks()
