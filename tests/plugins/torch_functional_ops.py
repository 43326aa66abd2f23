"""torch's own ``torch.nn.functional`` convolutions, re-exported unchanged as a plug-in module: the
oracle must pass its own gate (issue 19 item 1). Nothing here computes or adapts anything."""

from torch.nn.functional import (  # noqa: F401 - re-exported for the gate to find
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
)

ARRAYS = "torch"
