"""torch as more than one oracle: the same layer with channels-last tensors (``channels_last`` for 2-d
ops, ``channels_last_3d`` for 3-d ops; torch has none for 1-d ops, so those skip it) and with a
non-contiguous weight. Real releases computed wrong values in exactly these layouts while the
contiguous path was right (pytorch/pytorch#82060: channels_last weights with one input channel;
pytorch/pytorch#1246 and #16018: non-contiguous weights on CPU), so each variant is an oracle of its
own: when its output is bit-identical to contiguous torch's, the forward check already covers it;
otherwise the implementation under test is compared with it on its own line.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from conformance.judging.verdict import Check
from conformance.running.case_run import CaseRun
from conformance.running.torch_oracle import channels_last_format


def torch_variant_checks(run: CaseRun) -> Iterable[Check]:
    """One check per variant the case selects (``torch_variants``), besides ``contiguous`` (the forward check)."""
    case, name = run.case, run.implementation.name
    for variant in case.torch_variants:
        if variant == "contiguous":
            continue
        label = f"torch[{variant}]"
        if variant == "channels_last" and channels_last_format(case) is None:
            yield Check(
                label,
                True,
                f"{label}: not run: torch has no channels-last memory format for "
                f"{case.conv.type}'s {case.conv.spatial_dims + 2}-d tensors",
            )
            continue
        try:
            output = run.oracle.forward_variant(
                case, run.tensors.input, run.tensors.weight, run.tensors.bias, variant, run.device
            )
        except Exception as exc:  # torch refusing a layout it accepts contiguously is a finding
            yield Check(
                label,
                False,
                f"{label} refused the layer that contiguous torch computed: "
                f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
            )
            continue
        if run.torch.output is not None and np.array_equal(output, run.torch.output, equal_nan=True):
            # the same oracle twice: comparing the implementation with it again would repeat the forward check
            yield Check(
                label, True, f"{label}: bit-identical to contiguous torch (the forward check compares {name} with it)"
            )
            continue
        # the dtype is the forward check's business; here only the values count
        assert run.impl.output is not None  # (narrowing: the extra checks run on a computed output)
        comparison = run.compare_outputs(run.impl.output, output, actual_name=name, expected_name=label)
        yield Check(label, comparison.passed, comparison.summary(), comparison=comparison)
