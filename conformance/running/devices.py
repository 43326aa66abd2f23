"""Where torch runs (``--device cpu|cuda``), and the backend flags that change its numbers.

On CUDA, TF32 (a 10-bit-mantissa multiply inside float32 convolutions and matmuls) is switched
off by default: with it on, a float32 result is only as accurate as a bfloat16-ish product and
the float32 error bound would rightly fail it. The flags in force are recorded in every result.
"""

from __future__ import annotations

from typing import Any

import torch

DEVICES = ("cpu", "cuda")


class DeviceError(Exception):
    """The requested device cannot be used here."""


def configure_device(device: str, allow_tf32: bool = False) -> None:
    """Check ``device`` is usable and set the backend flags for it (TF32 off unless allowed)."""
    if device not in DEVICES:
        raise DeviceError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"--device cuda: no CUDA GPU is usable here (torch {torch.__version__}, "
                "torch.cuda.is_available() is False)"
            )
        torch.backends.cuda.matmul.allow_tf32 = allow_tf32
        torch.backends.cudnn.allow_tf32 = allow_tf32


def backend_flags(device: str) -> dict[str, Any]:
    """The settings a result was computed under, for the JSON report.

    >>> sorted(backend_flags("cpu"))
    ['cudnn_benchmark', 'cudnn_deterministic', 'device', 'device_name', 'tf32_cudnn', 'tf32_matmul', 'torch']
    """
    name = torch.cuda.get_device_name() if device == "cuda" and torch.cuda.is_available() else "cpu"
    return {
        "device": device,
        "device_name": name,
        "torch": torch.__version__,
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
    }
