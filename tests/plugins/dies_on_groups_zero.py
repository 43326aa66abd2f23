"""torch's functional conv2d, except that ``groups=0`` kills the process with SIGFPE, as a kernel
dividing by the group count does (MLX did, issue 19): the plug-in every entry point must survive."""

from __future__ import annotations

import os
import signal
from typing import Any

import torch
import torch.nn.functional as F

ARRAYS = "torch"


def conv2d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> torch.Tensor:
    if groups == 0:
        os.kill(os.getpid(), signal.SIGFPE)  # an integer division by zero in native code
    return F.conv2d(input, weight, bias, stride, padding, dilation, groups)
