"""The kill matrix: the case library must fail every classic grouped-convolution bug.

Each bug of tests/plugins/classic_bugs.py is the reference with one planted mistake; each runs as
the implementation under test over the whole library (as `conformance run cases/ --impl` does).
The unmodified reference, run the same way as a float32 plug-in, is the control: it must pass
every case, so a failure really is the planted bug. The matrix is printed (README: "The kill matrix").
"""

from __future__ import annotations

import pytest

import reference_impl
from tests.kill_matrix import bug_name, failing_cases, format_kill_matrix, kill_matrix, library_cases
from tests.plugins.classic_bugs import ALL_BUGS as BUGS

pytestmark = pytest.mark.slow  # every planted bug over the whole library: minutes


def test_every_planted_bug_is_caught_and_the_reference_is_not(capsys) -> None:
    cases = library_cases()
    assert len(BUGS) >= 16 and len({bug_name(bug) for bug, _ in BUGS}) == len(BUGS)

    assert failing_cases(reference_impl, cases) == []  # the control: no planted bug, no failure

    rows = kill_matrix(BUGS, cases)
    table = format_kill_matrix(rows)
    with capsys.disabled():
        print(f"\nkill matrix over {len(cases)} cases:\n{table}")
    survivors = [row.name for row in rows if not row.caught]
    assert not survivors, f"planted bugs the library does not catch: {survivors}\n{table}"

    by_name = {row.name: row for row in rows}
    # The bugs that only show in one kind of case are caught by exactly that kind.
    assert any(name.startswith("errors/") for name in by_name["accepts_indivisible_channels"].caught)
    assert any("padding_mode=reflect" in name or "reflect" in name for name in by_name["reflect_as_replicate"].caught)
    assert (
        "regressions/pytorch_54136_in1_out16_not_depthwise"
        in by_name["in_channels_equal_groups_taken_as_depthwise"].caught
    )
    assert "regressions/empty_batch_depthwise" in by_name["empty_batch_fails"].caught
    # Wiring bugs are seen by the torch-free oracles too, not only by the comparison with torch.
    for name in ("inputs_modulo_groups", "outputs_interleaved", "group_offset_missing"):
        kinds = by_name[name].checks_that_caught()
        assert kinds.get("wiring") and kinds.get("metamorphic:block-diagonal"), (name, kinds)
    # The N-d bugs are each caught by the cases written for them, not only by chance.
    assert "regressions/onednn_352_grouped_deconv_concat" in by_name["transposed_outputs_interleaved"].caught
    assert "regressions/tvm_4261_10223_transposed_out_channels" in by_name["transposed_out_channels_from_weight"].caught
    assert any(
        name.startswith("semantics/conv_transpose") and "output_padding" in name
        for name in by_name["output_padding_at_start"].caught
    )
    assert any(name.startswith("semantics/conv3d") for name in by_name["stride_dilation_order_swapped_3d"].caught)
    assert any(name.startswith("semantics/conv_transpose") for name in by_name["transposed_kernel_flipped"].caught)
    kinds = by_name["transposed_outputs_interleaved"].checks_that_caught()
    assert kinds.get("wiring") and kinds.get("metamorphic:per-group"), kinds
