"""Classic bugs of the N-d and transposed ops, each planted into a plug-in MODULE that defines all
six ops (conv1d ... conv_transpose3d, the ``--impl MODULE`` form): every op is the reference's,
except the one(s) the bug lives in. ``BUGS`` lists them as (module name, description) for the
kill matrix (tests/kill_matrix.py); ``conformance run cases/ --impl tests.plugins.nd_bugs.NAME``
runs one of them.
"""

from __future__ import annotations

BUGS = [
    ("transposed_outputs_interleaved", "transposed: output channels interleaved across groups (oneDNN#352)"),
    ("transposed_kernel_flipped", "transposed: kernel flipped (a convolution's input-gradient flip done twice)"),
    ("output_padding_at_start", "transposed: output_padding added at the start instead of the end"),
    (
        "transposed_out_channels_from_weight",
        "transposed: out_channels taken as weight.shape[1], without x groups (TVM#4261)",
    ),
    ("stride_dilation_order_swapped_3d", "3-d: per-dimension stride and dilation read as (W, H, D)"),
    (
        "transposed_groups_dilation_swapped",
        "transposed: groups and dilation passed in each other's place (bayesian-torch#34)",
    ),
]
