"""torch as more than one oracle: the same layer with ``channels_last`` tensors and with a
non-contiguous weight. Real releases computed wrong values in exactly these layouts while the
contiguous path was right (pytorch/pytorch#82060: channels_last weights with one input channel;
pytorch/pytorch#1246 and #16018: non-contiguous weights on CPU), so each variant is compared with
the implementation under test on its own line.
"""
from __future__ import annotations

from typing import Iterable

from ..compare import compare_arrays
from ..runner import CaseRun, Check
from ..torch_oracle import torch_forward_variant


def torch_variant_checks(run: CaseRun) -> Iterable[Check]:
    """One check per variant the case selects (``torch_variants``), besides ``contiguous`` (the forward check)."""
    case, name = run.case, run.implementation.name
    rtol, atol = case.rtol_atol
    for variant in case.torch_variants:
        if variant == "contiguous":
            continue
        label = f"torch[{variant}]"
        try:
            output = torch_forward_variant(case, run.tensors.input, run.tensors.weight, run.tensors.bias, variant)
        except Exception as exc:  # noqa: BLE001 - torch refusing a layout it accepts contiguously is a finding
            yield Check(label, False, f"{label} refused the layer that contiguous torch computed: "
                                      f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
            continue
        # the dtype is the forward check's business; here only the values count
        comparison = compare_arrays(run.impl.output, output, rtol, atol, actual_name=name, expected_name=label)
        yield Check(label, comparison.passed, comparison.summary(), comparison=comparison)
