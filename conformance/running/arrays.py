"""The array kinds a plug-in may take and return: NumPy arrays, torch tensors or JAX arrays.

A case's tensors are held as NumPy arrays in their storage dtype (conformance/cases/precision.py:
bfloat16 values in float32 arrays). :func:`to_native` hands them to a plug-in in the case's
*real* dtype, so a half-precision kernel path really runs:

==========  ===========================  =============================  ==========================
case dtype  ``numpy``                    ``torch`` (on the chosen device)  ``jax``
==========  ===========================  =============================  ==========================
float64     ``np.float64``               ``torch.float64``              ``jnp.float64`` (x64 on)
float32     ``np.float32``               ``torch.float32``              ``jnp.float32``
float16     ``np.float16``               ``torch.float16``              ``jnp.float16``
bfloat16    ``ml_dtypes.bfloat16``       ``torch.bfloat16``             ``jnp.bfloat16``
==========  ===========================  =============================  ==========================

:func:`from_native` reads a result back, whatever it is (a NumPy array, a torch tensor on any
device, a JAX array) and says which dtype it came in, so a wrong dtype is reported even for
bfloat16 (whose storage, float32, would hide a float32 result).

>>> import numpy as np
>>> native = to_native(np.array([1.5], dtype=np.float32), "bfloat16", "numpy")
>>> native.dtype.name
'bfloat16'
>>> from_native(native)
(array([1.5], dtype=float32), 'bfloat16')
"""

from __future__ import annotations

from typing import Any

import numpy as np

ARRAY_KINDS = ("numpy", "torch", "jax")
DEFAULT_ARRAYS = "numpy"


class ArrayKindError(Exception):
    """An array kind or device that cannot be used here (unknown, not installed, no such device)."""


def bfloat16_dtype() -> Any:
    """NumPy's bfloat16 extension dtype, from ml_dtypes (the one JAX uses)."""
    try:
        import ml_dtypes
    except ImportError:  # pragma: no cover - ml_dtypes is a dependency of the project
        raise ArrayKindError("bfloat16 cases for NumPy plug-ins need ml_dtypes: pip install ml_dtypes") from None
    return ml_dtypes.bfloat16


def numpy_dtype(case_dtype: str) -> Any:
    """The NumPy dtype a ``numpy`` plug-in gets for a case of ``case_dtype``."""
    return bfloat16_dtype() if case_dtype == "bfloat16" else np.dtype(case_dtype).type


def check_arrays(arrays: str, device: str) -> None:
    """Fail early, with the reason, on an unknown kind, a missing framework or an unusable device."""
    if arrays not in ARRAY_KINDS:
        raise ArrayKindError(f"--arrays must be one of {', '.join(ARRAY_KINDS)}, got {arrays!r}")
    if arrays == "numpy":
        if device != "cpu":
            raise ArrayKindError(
                f"--impl-device {device}: NumPy arrays live on the cpu; use --arrays torch or jax for a device"
            )
    elif arrays == "torch":
        torch_device(device)
    else:
        jax_device(device)


def torch_device(device: str) -> Any:
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ArrayKindError(f"--impl-device {device!r} is not a torch device ({exc})") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ArrayKindError(f"--impl-device {device}: no CUDA GPU is usable here (torch {torch.__version__})")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ArrayKindError(f"--impl-device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ArrayKindError(f"--impl-device {device}: MPS is not available here")
    return parsed


def _jax() -> Any:
    try:
        import jax
    except ImportError:
        raise ArrayKindError("--arrays jax needs JAX: pip install 'groups-conformance[jax]'") from None
    jax.config.update("jax_enable_x64", True)  # else float64 cases would silently become float32
    return jax


def jax_device(device: str) -> Any:
    """``cpu``, ``cuda`` / ``gpu``, ``tpu``, optionally ``:INDEX``, as a jax.Device."""
    jax = _jax()
    platform, _, index = device.partition(":")
    platform = {"cuda": "gpu"}.get(platform, platform)
    try:
        devices = jax.devices(platform)
    except RuntimeError as exc:
        raise ArrayKindError(f"--impl-device {device}: JAX has no {platform} backend here ({exc})") from None
    position = int(index) if index.isdigit() else 0
    if position >= len(devices):
        raise ArrayKindError(f"--impl-device {device}: JAX sees {len(devices)} {platform} device(s)")
    return devices[position]


def to_native(array: np.ndarray | None, case_dtype: str, arrays: str, device: str = "cpu") -> Any:
    """A case array (storage dtype) as the plug-in takes it, in ``case_dtype``; None stays None."""
    if array is None:
        return None
    if arrays == "numpy":
        return np.ascontiguousarray(array).astype(numpy_dtype(case_dtype))  # bfloat16 values: exact
    if arrays == "torch":
        import torch

        from conformance.running.torch_oracle import TORCH_DTYPES

        host = np.array(array, order="C", copy=True)  # writable: torch must not share a read-only buffer
        return torch.from_numpy(host).to(device=torch_device(device), dtype=TORCH_DTYPES[case_dtype])
    if arrays == "jax":
        jax = _jax()
        as_numpy = np.ascontiguousarray(array).astype(numpy_dtype(case_dtype))
        return jax.device_put(as_numpy, jax_device(device))
    raise ArrayKindError(f"unknown array kind {arrays!r}")


def from_native(value: Any) -> tuple[np.ndarray, str]:
    """A plug-in's result as a host NumPy array, and the name of the dtype it came in.

    bfloat16 (a tensor, a JAX array or an ml_dtypes array) becomes float32, exactly; everything
    else keeps its dtype. A torch tensor is read back from whatever device it is on.
    """
    if _is_torch_tensor(value):
        import torch

        tensor = value.detach()
        name = str(tensor.dtype).removeprefix("torch.")
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        return tensor.cpu().numpy(), name
    if value is None or isinstance(value, (str, bytes, dict, tuple, list, set)):
        raise TypeError(f"returned a {type(value).__name__}, not an array")
    array = np.asarray(value)  # a NumPy array, a JAX array (copied to the host), anything with __array__
    if array.dtype == object:
        raise TypeError(f"returned a {type(value).__name__}, not an array")
    name = array.dtype.name
    if name == "bfloat16":
        array = array.astype(np.float32)
    return array, name


def _is_torch_tensor(value: Any) -> bool:
    # No torch import for a NumPy plug-in's result: check the type's module first.
    if not type(value).__module__.startswith("torch"):
        return False
    import torch

    return isinstance(value, torch.Tensor)
