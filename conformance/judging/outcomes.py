"""The shared vocabulary of verdicts: what a call of an implementation can end in, and the kind
of every failure. Every layer (runner, reports, the plug-in gate, the framework matrix, the
crash-isolating worker) speaks these names, so they live in one small module with no imports.

Statuses (``CaseResult.status``): passed, failed, error (the case itself is broken), skipped,
xfailed (failed or unsupported, and listed in an xfail file), xpassed (listed, but passed: a
stale entry, which fails the run).

Kinds (``CaseResult.kind``, None for a pass): what went wrong, judged by behaviour, never by the
wording of an exception message.
"""

from __future__ import annotations

PASSED, FAILED, ERROR, SKIPPED, XFAILED, XPASSED = "passed", "failed", "error", "skipped", "xfailed", "xpassed"
STATUSES = (PASSED, FAILED, ERROR, SKIPPED, XFAILED, XPASSED)

WRONG_VALUES = "wrong_values"  # the output (or a gradient) differs from torch's beyond the bound
WRONG_SHAPE = "wrong_shape"  # an output of another shape than torch's
WRONG_DTYPE = "wrong_dtype"  # an output in another dtype than the case's
CRASHED = "crashed"  # a crash-type exception (TypeError, ...), a dead or hung process
ACCEPTED_INVALID = "accepted_invalid"  # computed an output where torch refuses the layer
REFUSED_VALID = "refused_valid"  # refused (deliberately) where torch computes
UNSUPPORTED = "unsupported"  # raised NotImplementedError / Unsupported
# The verdicts on an exception (Implementation.judge_exception): a deliberate refusal, or one of the kinds
# crashed, unsupported, adapter_error.
REFUSED = "refused"
# An error in a framework adapter's own translation code (building the framework's graph or arguments),
# not in the framework: a bug of the adapter, never pinned as a framework finding.
ADAPTER_ERROR = "adapter_error"
KINDS = (WRONG_VALUES, WRONG_SHAPE, WRONG_DTYPE, CRASHED, ACCEPTED_INVALID, REFUSED_VALID, UNSUPPORTED, ADAPTER_ERROR)


class Unsupported(NotImplementedError):
    """Raise this (or any NotImplementedError) from a plug-in for a layer it does not implement:
    the case reports kind ``unsupported`` with the message, instead of a crash or a refusal.

    >>> issubclass(Unsupported, NotImplementedError)
    True
    """


class ImplementationCrashed(Exception):
    """The implementation's worker process died (a signal, an exit status) or hung past its timeout.
    Raised by the crash-isolating worker; always judged as kind ``crashed``."""
