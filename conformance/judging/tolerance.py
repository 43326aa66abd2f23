"""A tolerance that comes from an error bound, per element (the default ``tolerance: {mode: bound}``).

Every element of a convolution (and of each of its gradients) is a sum of K products. Summed in
floating point with unit roundoff u, in any order, with or without FMA, and rounded once more to
the output dtype, such a sum is off from the exact one by at most about

    |computed - exact| <= gamma_K * B,   gamma_K = K*u / (1 - K*u),   B = sum of |each product|

(Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., section 3.1). The check is

    |torch - reference| <= c * K * (u + u_ref) * B  +  c * K * eta

with ``c = SAFETY_FACTOR = 2`` (gamma_K <= 2*K*u while K*u <= 1/2, and it also absorbs the final
rounding to the output dtype), u the unit roundoff of the case dtype, ``u_ref = 2^-53`` the
reference's own float64 rounding (only matters for float64 cases), and eta the dtype's smallest
subnormal (below the normal range each rounding errs by up to eta/2 in absolute terms: the floor).

B is computed in float64 by running the reference on absolute values: for the output,
``conv(|x|, |w|) + |b|`` with the case's op (conv1d ... conv_transpose3d); for the gradients, the
reference backward on ``|dy|, |x|, |w|``. K is the number of products each element really sums:
``in_channels/groups * prod(kernel)`` (+1 with a bias) for a convolution's output; for a transposed
convolution it varies from element to element (an output position is reached by as many
(input position, tap) pairs as the stride lets through, fewer at the borders), so it is the same
transposed convolution on all-ones tensors; for the gradients, likewise the backward on all-ones.

Two adjustments, each stated in the report:
* ``sides = 2`` when neither compared side is the float64 reference (a plug-in against torch):
  both may be off by a bound, in opposite directions.
* ``extra_terms = 2`` against a golden ``expected`` written as exact decimals: the case's tensors
  are those decimals rounded to the dtype, which moves each product by up to 2u more.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from conformance.cases.precision import SMALLEST_SUBNORMAL, UNIT_ROUNDOFF

SAFETY_FACTOR = 2.0
REFERENCE_UNIT_ROUNDOFF = 2.0**-53  # the reference computes in float64
DECIMAL_INPUT_TERMS = 2  # a product of two decimals rounded to the dtype is off by up to 2u (relative)


@dataclass(frozen=True)
class ErrorBound:
    """The allowed error of every element of one tensor: ``c * sides * (K + extra) * ((u + u_ref) * B + eta)``.

    >>> bound = ErrorBound("float32", magnitude=np.array([1.0, 100.0]), terms=9)
    >>> bound.allowed().tolist() == [2 * 9 * (2**-24 + 2**-53) * b + 2 * 9 * 2**-149 for b in (1.0, 100.0)]
    True
    """

    dtype: str
    magnitude: np.ndarray  # B = sum of |products| per element, float64
    terms: Any  # K: an int, or an integer array shaped like magnitude
    factor: float = SAFETY_FACTOR
    sides: int = 1
    extra_terms: int = 0

    @property
    def unit_roundoff(self) -> float:
        return UNIT_ROUNDOFF[self.dtype]

    def _terms(self) -> np.ndarray:
        return np.asarray(self.terms, dtype=np.float64) + self.extra_terms

    def allowed(self) -> np.ndarray:
        """The bound per element (a non-finite B, from an inf or NaN input, allows no error at all)."""
        unit = self.unit_roundoff + REFERENCE_UNIT_ROUNDOFF
        with np.errstate(invalid="ignore", over="ignore"):
            # c * sides * K first (a scalar, or K's array), then times the per-element part, computed in
            # place: one new array and four passes over it, where a network layer's output has ~1M elements.
            coefficient = self.factor * self.sides * self._terms()
            bound = np.multiply(self.magnitude, unit, dtype=np.float64)
            bound += SMALLEST_SUBNORMAL[self.dtype]
            if np.ndim(coefficient) == 0 or np.shape(coefficient) == bound.shape:
                bound *= coefficient
            else:  # (K broadcast against B: a new array of the broadcast shape)
                bound = coefficient * bound
            bound = np.broadcast_to(bound, np.shape(self.magnitude))
            # a finite sum means every element is finite (one pass; an overflowing sum only takes the long way)
            total = float(bound.sum())
        return bound if np.isfinite(total) else np.where(np.isfinite(bound), bound, 0.0)

    def explain(self, index: tuple[int, ...]) -> str:
        """How the bound of element ``index`` is made, e.g. 'c 2 x K 37 x u 2^-24 x B 12.5'."""
        terms = int(np.broadcast_to(self._terms(), np.shape(self.magnitude))[index])
        text = f"c {self.factor:g}"
        if self.sides != 1:
            text += f" x {self.sides} sides"
        k_text = f"{terms - self.extra_terms}+{self.extra_terms}" if self.extra_terms else f"{terms}"
        exponent = int(round(-np.log2(self.unit_roundoff)))
        return f"bound {text} x K {k_text} x u 2^-{exponent} x B {float(self.magnitude[index]):.6g} (+ subnormal floor)"

    def for_sides(self, sides: int) -> ErrorBound:
        return dataclasses.replace(self, sides=sides)

    def against_decimals(self) -> ErrorBound:
        """The bound against golden values written as exact decimals (inputs rounded: 2 more units)."""
        return dataclasses.replace(self, extra_terms=DECIMAL_INPUT_TERMS)


def op_name(conv_kwargs: dict[str, Any], weight: Any) -> str:
    """The ``torch.nn.functional`` name of the op these F-style arguments belong to: a transposed
    op's arguments always hold ``output_padding`` (``ConvConfig.functional_kwargs``); the weight has
    two axes more than the op has spatial dimensions.

    >>> op_name({"stride": 2, "output_padding": 1}, np.ones((4, 2, 3))), op_name({}, np.ones((4, 2, 3, 3, 3)))
    ('conv_transpose1d', 'conv3d')
    """
    dims = np.ndim(weight) - 2
    return f"conv_transpose{dims}d" if "output_padding" in conv_kwargs else f"conv{dims}d"


def _reference(name: str) -> Any:
    import reference_impl

    return getattr(reference_impl, name)


def forward_bound(
    dtype: str,
    conv_kwargs: dict[str, Any],
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    op: str | None = None,
) -> ErrorBound:
    """The bound of a convolution's output: B = conv(|x|, |w|) + |b| (one extra reference call).

    ``conv_kwargs`` are the F-style keyword arguments of ``op`` (default: told by
    :func:`op_name`). Padding copies values, so padding |x| is |padding x|: B is exact in every mode.

    >>> b = forward_bound("float16", {"groups": 2}, np.array([1.0, -2.0]).reshape(1, 2, 1, 1),
    ...                   np.array([3.0, 4.0]).reshape(2, 1, 1, 1), np.array([-1.0, 0.5]))
    >>> b.magnitude.ravel().tolist(), b.terms
    ([4.0, 8.5], 2)
    """
    op = op or op_name(conv_kwargs, weight)
    absolute = lambda a: None if a is None else np.abs(np.asarray(a, dtype=np.float64))  # noqa: E731
    magnitude = _reference(op)(absolute(x), absolute(weight), absolute(bias), **conv_kwargs)
    with_bias = 1 if bias is not None else 0
    if not op.startswith("conv_transpose"):
        terms: Any = int(np.prod(np.shape(weight)[1:])) + with_bias  # in_channels/groups * prod(kernel)
        return ErrorBound(dtype, magnitude, terms)
    # Transposed: output element (n, o, *p) sums in_channels/groups channels times the (input
    # position, tap) pairs that land on p; count the pairs on one channel of ones, groups 1.
    groups = conv_kwargs.get("groups", 1)
    in_per_group = np.shape(weight)[0] // groups
    spatial = np.shape(x)[-(np.ndim(weight) - 2) :]
    kernel = np.shape(weight)[2:]
    single = {key: value for key, value in conv_kwargs.items() if key != "groups"}
    pairs = _reference(op)(np.ones((1, 1, *spatial)), np.ones((1, 1, *kernel)), None, **single)[0, 0]
    terms = np.broadcast_to(in_per_group * pairs + with_bias, np.shape(magnitude))
    return ErrorBound(dtype, magnitude, terms.astype(np.int64))


def gradient_bounds(
    dtype: str,
    conv_kwargs: dict[str, Any],
    grad_output: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    op: str | None = None,
) -> dict[str, ErrorBound]:
    """The bounds of grad_input, grad_weight and grad_bias (when there is a bias).

    B is the reference backward on absolute values. K counts the products each gradient element
    sums (zero padding contributes none): the same backward on all-ones tensors, which needs only
    one channel, since every channel sees the same positions; a grad_input element also sums the
    other side's channels of its group (out_channels/groups for a convolution, the weight's second
    axis for a transposed one).

    >>> bounds = gradient_bounds("float32", {"stride": 2, "padding": 1, "groups": 2},
    ...                          np.ones((1, 2, 2, 2)), np.ones((1, 2, 3, 3)), np.ones((2, 1, 3, 3)), None)
    >>> bounds["grad_weight"].terms[0, 0].tolist()        # how many outputs each tap reached
    [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    op = op or op_name(conv_kwargs, weight)
    backward = _reference(f"{op}_backward")

    def as64(a: np.ndarray | None) -> Any:
        return None if a is None else np.asarray(a, dtype=np.float64)

    grad_output, x, weight, bias = map(as64, (grad_output, x, weight, bias))
    magnitudes = backward(
        np.abs(grad_output), np.abs(x), np.abs(weight), None if bias is None else np.abs(bias), **conv_kwargs
    )

    # Counts on one channel of one image: (1, 1, *spatial) input, (1, 1, *kernel) weight, groups 1.
    dims = weight.ndim - 2
    single = {**conv_kwargs, "groups": 1}
    groups = conv_kwargs.get("groups", 1)
    other_per_group = weight.shape[1] if op.startswith("conv_transpose") else weight.shape[0] // groups
    batch = x.shape[0] if x.ndim == dims + 2 else 1
    spatial_out = grad_output.shape[-dims:]
    counts = backward(
        np.ones((1, 1, *spatial_out)),
        np.ones((1, 1, *x.shape[-dims:])),
        np.ones((1, 1, *weight.shape[2:])),
        None,
        **single,
    )
    terms = {
        "grad_input": np.broadcast_to(other_per_group * counts[0][0, 0], x.shape),
        "grad_weight": np.broadcast_to(batch * counts[1][0, 0], weight.shape),
    }
    bounds = {
        name: ErrorBound(dtype, magnitudes[index], terms[name])
        for index, name in enumerate(("grad_input", "grad_weight"))
    }
    if bias is not None:
        bounds["grad_bias"] = ErrorBound(dtype, magnitudes[2], batch * int(np.prod(spatial_out)))
    return bounds
