"""The oracle: the case's ``torch.nn`` module (``conv.type``: Conv1d, Conv2d, Conv3d, ConvTranspose1d/2d/3d)
with the case's weight and bias loaded, in the case's dtype,
on the chosen device (``cpu`` unless ``--device cuda``), in one of several memory layouts."""

from __future__ import annotations

import contextlib
import contextvars
import warnings
from collections.abc import Iterator

import numpy as np
import torch

from conformance.cases.schema import CONV_TYPES, Case

TORCH_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


def _without_init(module_class: type) -> type:
    """``module_class`` (a ``torch.nn`` convolution) whose constructor skips the random (kaiming)
    initialisation: the parameters are replaced by the case's right after, and on a tiny case that
    initialisation costs as much as the convolution. Argument checks and forward are torch's own."""
    # the same class name, so torch's own messages ("... supported for ConvTranspose2d") read as usual
    return type(module_class.__name__, (module_class,), {"reset_parameters": lambda self: None})


# One subclass per op, made once: building a class per call would cost more than the convolution.
_MODULES_WITHOUT_INIT: dict[str, type] = {name: _without_init(getattr(torch.nn, name)) for name in CONV_TYPES}


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one intra-op thread, then restore the caller's setting.

    The oracle's tensors are small: on a busy machine the thread pool's hand-offs cost 10-20 ms per
    call, a hundred times the arithmetic, and one thread also keeps torch's summation order the
    same on every machine.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# torch's notes about its own cost, not about the result: the oracle computes what the case asks,
# and the user of `conformance run` has nothing to do about them (they reached the terminal on every
# run of the bundled library). Only these are hidden, and only around the oracle's own calls.
_ORACLE_NOTES = (r"Using padding='same' with even kernel lengths and odd dilation may require a zero-padded copy",)
_HIDE_ORACLE_NOTES: contextvars.ContextVar[bool] = contextvars.ContextVar("hide_oracle_notes", default=True)


@contextlib.contextmanager
def oracle_call() -> Iterator[None]:
    """Around each call of torch as the oracle: one intra-op thread (:func:`single_threaded`) and
    torch's performance notes (``_ORACLE_NOTES``) kept off the terminal, unless
    :func:`oracle_notes_shown`; every other warning shows."""
    with single_threaded(), warnings.catch_warnings():
        if _HIDE_ORACLE_NOTES.get():
            for message in _ORACLE_NOTES:
                warnings.filterwarnings("ignore", message=message, category=UserWarning)
        yield


@contextlib.contextmanager
def oracle_notes_shown() -> Iterator[None]:
    """Within: torch's notes are warned as usual (``conformance explain`` records them and shows each
    as one short line, where a learner asks what torch did)."""
    token = _HIDE_ORACLE_NOTES.set(False)
    try:
        yield
    finally:
        _HIDE_ORACLE_NOTES.reset(token)


def to_torch(array: np.ndarray, case: Case, device: str = "cpu") -> torch.Tensor:
    """A case array as a torch tensor in the case dtype (bfloat16 arrays are float32 holding
    bfloat16 values, so the conversion is exact)."""
    return torch.from_numpy(np.array(array)).to(device=device, dtype=TORCH_DTYPES[case.dtype])


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """Back to NumPy on the CPU; bfloat16 becomes float32 (exactly: NumPy has no bfloat16)."""
    tensor = tensor.detach().cpu()
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


def build_module(
    case: Case, weight: np.ndarray, bias: np.ndarray | None, device: str = "cpu", requires_grad: bool = False
) -> torch.nn.Module:
    """``torch.nn.<conv.type>(**case.conv)`` holding exactly the case's parameters.

    The parameters are replaced, not copied into: ``copy_`` would silently broadcast a weight
    of the wrong shape, while a replaced parameter of the wrong shape makes torch refuse.
    """
    module_class = _MODULES_WITHOUT_INIT[case.conv.type]
    module = module_class(**case.conv.torch_kwargs(), dtype=TORCH_DTYPES[case.dtype], device=device)
    module.weight = torch.nn.Parameter(to_torch(weight, case, device), requires_grad=requires_grad)
    if bias is not None:
        module.bias = torch.nn.Parameter(to_torch(bias, case, device), requires_grad=requires_grad)
    elif module.bias is not None:  # never left uninitialised: the case must supply what the layer has
        raise ValueError("the layer has a bias (conv.bias: true) but the case supplied none")
    return module


def torch_forward(
    case: Case, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, device: str = "cpu"
) -> np.ndarray:
    """Run the case through torch; raises whatever torch raises for an invalid layer."""
    module = build_module(case, weight, bias, device)
    with torch.no_grad(), oracle_call():
        return to_numpy(module(to_torch(x, case, device)))


def torch_backward(
    case: Case, grad_output: np.ndarray, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Autograd's ``(grad_input, grad_weight, grad_bias)`` of ``sum(output * grad_output)``."""
    module = build_module(case, weight, bias, device, requires_grad=True)
    x_tensor = to_torch(x, case, device).requires_grad_(True)
    with oracle_call():
        output = module(x_tensor)
        dy = to_torch(grad_output, case, device)
        if output.shape != dy.shape:  # (the check output.backward(dy) makes; the product below would broadcast)
            raise RuntimeError(
                f"Mismatch in shape: grad_output[0] has a shape of {dy.shape} "
                f"and output[0] has a shape of {output.shape}."
            )
        # The scalar sum(output * dy), differentiated: its gradient at the output is 1 * dy = dy exactly, so every
        # gradient is output.backward(dy)'s bit for bit (checked on each backward case of the library), but without
        # the ~0.4 s import of sympy that torch makes for a non-scalar backward's shape check (_make_grads).
        (output * dy).sum().backward()
    grad_input, grad_weight = x_tensor.grad, module.weight.grad
    grad_bias = None if bias is None else module.bias.grad
    # Narrowing for mypy (torch types a module's attributes as Tensor | Module): autograd filled them.
    assert isinstance(grad_input, torch.Tensor) and isinstance(grad_weight, torch.Tensor)
    assert grad_bias is None or isinstance(grad_bias, torch.Tensor)
    return to_numpy(grad_input), to_numpy(grad_weight), None if grad_bias is None else to_numpy(grad_bias)


def strided_copy(tensor: torch.Tensor) -> torch.Tensor:
    """The same values as ``tensor`` in a non-contiguous layout: axes stored in reverse order, and the
    first axis every other element of a buffer twice as long (so even a (C, 1, 1, 1) depthwise weight
    is a real strided view, not one that torch may treat as contiguous).

    >>> t = torch.arange(24.0).reshape(2, 3, 2, 2)
    >>> s = strided_copy(t)
    >>> bool(torch.equal(s, t)), s.is_contiguous()
    (True, False)
    """
    reversed_shape = tuple(reversed(tensor.shape))
    buffer = torch.zeros(*reversed_shape[:-1], 2 * reversed_shape[-1], dtype=tensor.dtype, device=tensor.device)
    view = buffer[..., ::2]  # (*reversed kernel, second axis, first axis), stride 2
    view.copy_(tensor.permute(*reversed(range(tensor.dim()))))
    return view.permute(*reversed(range(tensor.dim())))  # the weight's own shape, non-contiguous


def channels_last_format(case: Case) -> torch.memory_format | None:
    """torch's channels-last memory format for the op's 4-d or 5-d tensors; None for a 1-d op, whose
    3-d tensors torch has no channels-last format for."""
    return {2: torch.channels_last, 3: torch.channels_last_3d}.get(case.conv.spatial_dims)


def torch_forward_variant(
    case: Case, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, variant: str, device: str = "cpu"
) -> np.ndarray:
    """Run the case through torch in one memory layout (``schema.TORCH_VARIANTS``).

    * ``contiguous``: :func:`torch_forward`, the forward oracle;
    * ``channels_last``: module (weight) and a batched input channels-last in memory: torch's
      ``channels_last`` for a 4-d tensor (2-d ops: NHWC), ``channels_last_3d`` for a 5-d one (3-d
      ops: NDHWC); 1-d ops have no such format (:func:`channels_last_format` says why); an unbatched
      input has none either and stays as it is;
    * ``noncontiguous_weight``: the weight is a strided view (see :func:`strided_copy`).
    """
    if variant == "contiguous":
        return torch_forward(case, x, weight, bias, device)
    module = build_module(case, weight, bias, device)
    inputs = to_torch(x, case, device)
    if variant == "channels_last":
        memory_format = channels_last_format(case)
        if memory_format is None:
            raise ValueError(f"{case.conv.type} has no channels-last memory format in torch")
        module = module.to(memory_format=memory_format)  # type: ignore[call-overload]  # (not in torch's stubs)
        if inputs.dim() == case.conv.spatial_dims + 2:
            inputs = inputs.contiguous(memory_format=memory_format)
    elif variant == "noncontiguous_weight":
        weight_tensor = module.weight
        assert isinstance(weight_tensor, torch.Tensor)  # (narrowing: torch types it Tensor | Module)
        module.weight = torch.nn.Parameter(strided_copy(weight_tensor.data), requires_grad=False)
    else:
        raise ValueError(f"unknown torch variant {variant!r}")
    with torch.no_grad(), oracle_call():
        return to_numpy(module(inputs).contiguous())


class TorchOracle:
    """The oracle a run asks (:class:`conformance.running.case_run.Oracle`): torch itself, through
    the functions above. A test passes a fake with the same three methods instead."""

    def forward(
        self, case: Case, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, device: str = "cpu"
    ) -> np.ndarray:
        return torch_forward(case, x, weight, bias, device)

    def backward(
        self,
        case: Case,
        grad_output: np.ndarray,
        x: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None,
        device: str = "cpu",
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        return torch_backward(case, grad_output, x, weight, bias, device)

    def forward_variant(
        self, case: Case, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, variant: str, device: str = "cpu"
    ) -> np.ndarray:
        return torch_forward_variant(case, x, weight, bias, variant, device)
