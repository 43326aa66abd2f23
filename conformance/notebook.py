"""``explain`` in a notebook: ``from conformance import explain``.

``explain(x)`` takes a case file, a bundled case name (``"seed/groups3"``), a live
``torch.nn.Conv1d/2d/3d`` or ``ConvTranspose1d/2d/3d`` (with an optional ``input=``), or any other
``torch.nn.Module``. For a single layer it returns a :class:`CaseExplanation`: ``print()`` shows the
terminal text of ``conformance explain``, and Jupyter renders it as the HTML report's section for
that case (the grouping table, the input and weight per group, the sums, the pictures, and the
hover/tap highlight of what each output reads). For a whole model it returns a
:class:`ModelExplanation`: its grouped convolutions with their groups, channels per group,
depthwise multiplier, and parameters and multiply-adds against ``groups=1``.

    >>> e = explain("seed/groups3")
    >>> "y[0,2,0,0] = 650 = 5×10 (in 2) + 6×100 (in 3)" in str(e)
    True
    >>> "650 = 5×10 + 6×100" in e._repr_html_()
    True

Heavy imports (torch, the runner, the report) wait until ``explain`` is called, so importing this
module costs nothing.
"""

from __future__ import annotations

import html
import math
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from conformance.cases.schema import Case
    from conformance.running.runner import CaseResult
    from conformance.teaching.explain import Explanation

HTML_CLASS = "conformance-explain"  # every style of the notebook output is scoped under this class
TORCH_DTYPES = {
    "torch.float32": "float32",
    "torch.float64": "float64",
    "torch.float16": "float16",
    "torch.bfloat16": "bfloat16",
}
LEADING_ROOT = re.compile(r"^(html|body)\s+")  # "body table" scoped is ".scope table"
MAX_DIGIT_CHANNELS = 6  # a default input up to this many channels holds 1, 10, 100, ...: the digits name the channel


# ---------------------------------------------------------------------------------------------
# The entry point


def explain(
    subject: Any,
    *,
    input: Any = None,  # noqa: A002 - the keyword torch users expect
    case: str | None = None,
    reveal: bool = False,
    checks: bool = False,
    implementation: Any = None,
) -> CaseExplanation | ModelExplanation:
    """Explain a case, a convolution layer or a model's grouped convolutions.

    ``subject``: a case file path; a bundled case name such as ``"seed/groups3"`` or
    ``"tutorial/07_stacked/4_shuffle"``; a live ``torch.nn.Conv*d``/``ConvTranspose*d`` (``input``:
    the tensor to run it on; default: one sample of the smallest size, channel c holding 10^c); or
    any ``torch.nn.Module`` (``input``: a sample batch, to count multiply-adds). ``case`` picks one
    case of a file that holds several; ``reveal`` shows an exercise's values; ``checks`` adds the
    harness's comparisons; ``implementation`` (an ``--impl`` spec or a callable) puts a plug-in's
    values beside torch's.

    Raises ValueError for a subject it cannot explain, naming what it expected.
    """
    torch = _torch_or_none()
    if torch is not None and isinstance(subject, torch.nn.Module):
        if _conv_type(subject) is not None:
            return _explain_case(case_from_module(subject, input), implementation, reveal, checks, live=True)
        return explain_model(subject, input=input)
    if isinstance(subject, (str, Path)):
        return _explain_case(find_case(subject, case), implementation, reveal, checks)
    raise ValueError(
        f"explain() takes a case file, a bundled case name (e.g. 'seed/groups3'), a torch.nn convolution "
        f"or a torch.nn.Module; got {type(subject).__name__}"
    )


def _torch_or_none() -> Any:
    try:
        import torch
    except ImportError:  # a case file needs no torch to be named; running it will say what is missing
        return None
    return torch


# ---------------------------------------------------------------------------------------------
# Finding a case


def find_case(subject: str | Path, wanted: str | None = None) -> Case:
    """The case a path or a bundled case name names (``wanted``: one case of a file with several).

    A path that exists is read as a case file; otherwise ``subject`` is looked up by case name in the
    bundled library (``conformance.cases.library``), then as a file under it (``tutorial/01_dense``).
    """
    from conformance.cases.errors import CaseError
    from conformance.cases.library import bundled_cases_path
    from conformance.cases.loader import load_cases, load_file

    path = Path(subject)
    if path.is_file():
        return _pick(load_file(path), wanted, str(path))
    library = bundled_cases_path()
    name = str(subject).strip("/")
    for suffix in (".yaml", ".yml"):
        candidate = library / (name + suffix)
        if candidate.is_file():
            return _pick(load_file(candidate), wanted, str(candidate))
    found = [item for item in load_cases([library]) if not isinstance(item, CaseError) and item.name == name]
    if found:
        return found[0]
    close = sorted(
        {item.name for item in load_cases([library]) if not isinstance(item, CaseError) and name in item.name},
        key=lambda found: (not found.endswith("/" + name), found),  # "seed/groups3" first for "groups3"
    )
    hint = f"; cases whose name contains it: {', '.join(close[:8])}" if close else ""
    raise ValueError(f"{subject!r} is neither a case file nor a case name of the bundled library ({library}){hint}")


def _pick(items: list, wanted: str | None, where: str) -> Case:
    from conformance.cases.errors import CaseError

    names = [item.case_name if isinstance(item, CaseError) else item.name for item in items]
    if wanted is None and len(items) == 1:
        chosen = items[0]
    else:
        matches = [i for i, n in zip(items, names, strict=True) if wanted is not None and wanted in str(n)]
        exact = [i for i, n in zip(items, names, strict=True) if n == wanted]
        if not (exact or len(matches) == 1):
            raise ValueError(f"{where} holds {len(items)} cases; choose one with case=: {', '.join(map(str, names))}")
        chosen = (exact or matches)[0]
    if isinstance(chosen, CaseError):
        raise ValueError(f"the case cannot be explained, its file is broken:\n{chosen.format(snippets=True)}")
    return chosen


# ---------------------------------------------------------------------------------------------
# A live torch module as a case


def _conv_type(module: Any) -> str | None:
    """'Conv2d', 'ConvTranspose1d', ... for a torch.nn convolution (or a subclass); None otherwise."""
    import torch

    for name in ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "Conv1d", "Conv2d", "Conv3d"):
        if isinstance(module, getattr(torch.nn, name)):
            return name
    return None


def default_input_shape(conv: Any) -> tuple[int, ...]:
    """The smallest single-sample input that gives the layer an output: the kernel's reach (at
    least the padding plus one, which reflect padding needs) for a convolution, 2 positions for a
    transposed one (so its overlapping windows show), grown until every output size is positive.

    >>> from conformance.cases.schema import ConvConfig
    >>> default_input_shape(ConvConfig(6, 6, 1, groups=3)), default_input_shape(ConvConfig(4, 4, 3, padding=1))
    ((1, 6, 1, 1), (1, 4, 3, 3))
    """
    from conformance.cases.schema import conv_output_shape

    dims = conv.spatial_dims
    kernel, dilation = conv.per_dim("kernel_size"), conv.per_dim("dilation")
    if conv.transposed:
        sizes = [2] * dims
    else:
        padding = [0] * dims if isinstance(conv.padding, str) else list(conv.per_dim("padding"))
        sizes = [max(d * (k - 1) + 1, p + 1) for k, d, p in zip(kernel, dilation, padding, strict=True)]
    for _ in range(64):
        shape = (1, conv.in_channels, *sizes)
        try:
            if all(n > 0 for n in conv_output_shape(conv, shape)[2:]):
                return shape
        except (ValueError, ZeroDivisionError):
            pass
        sizes = [n + 1 for n in sizes]
    return (1, conv.in_channels, *sizes)


def case_from_module(module: Any, input: Any = None) -> Case:  # noqa: A002 - torch's word
    """A case holding a live convolution module's settings and its own weight and bias, run on
    ``input`` (a tensor, batched or not) or on the default input (:func:`default_input_shape`;
    channel c holds 10^c when there are at most MAX_DIGIT_CHANNELS channels, else c + 1)."""
    import numpy as np

    from conformance.cases.schema import Case, ConvConfig
    from conformance.cases.tensors import TensorSpec

    kind = _conv_type(module)
    if kind is None:
        raise ValueError(f"not a torch.nn convolution: {type(module).__name__}")
    transposed = kind.startswith("ConvTranspose")
    options: dict[str, Any] = dict(
        in_channels=int(module.in_channels),
        out_channels=int(module.out_channels),
        kernel_size=tuple(module.kernel_size),
        stride=tuple(module.stride),
        padding=module.padding if isinstance(module.padding, str) else tuple(module.padding),
        dilation=tuple(module.dilation),
        groups=int(module.groups),
        bias=module.bias is not None,
        padding_mode=module.padding_mode,
        type=kind,
    )
    if transposed:
        options["output_padding"] = tuple(module.output_padding)
    conv = ConvConfig(**options)
    dtype = TORCH_DTYPES.get(str(module.weight.dtype))
    if dtype is None:
        raise ValueError(f"explain() handles float32, float64, float16 and bfloat16 layers, not {module.weight.dtype}")

    def values(tensor: Any) -> TensorSpec:
        array = tensor.detach().to("cpu").double().numpy()
        return TensorSpec("values", shape=tuple(array.shape), values=array.reshape(-1).copy())

    if input is None:
        shape = default_input_shape(conv)
        per_channel = [10.0**c if conv.in_channels <= MAX_DIGIT_CHANNELS else c + 1.0 for c in range(conv.in_channels)]
        data = np.broadcast_to(np.array(per_channel).reshape(1, -1, *[1] * conv.spatial_dims), shape)
        x = TensorSpec("values", shape=shape, values=np.array(data, dtype=np.float64).reshape(-1))
        described = f"on one sample of shape {shape} whose input channel c holds " + (
            "10^c (so an output's digits name the channels it read)"
            if conv.in_channels <= MAX_DIGIT_CHANNELS
            else "c + 1"
        )
    else:
        x = values(input)
        shape = tuple(x.shape or ())
        described = f"on the input given, of shape {shape}"
    weight = values(module.weight)
    bias = values(module.bias) if module.bias is not None else None
    return Case(
        name=f"torch.nn.{kind}",
        file=Path(f"a live torch.nn.{kind}"),
        line=0,
        conv=conv,
        input=x,
        input_shape=shape,
        weight=weight,
        bias=bias,
        dtype=dtype,
        description=f"{module!r}, with its own weight{' and bias' if bias is not None else ''}, {described}.",
    )


# ---------------------------------------------------------------------------------------------
# One layer


@dataclass
class CaseExplanation:
    """One case explained: ``str()`` is the terminal text, ``_repr_html_()`` the report's section."""

    result: CaseResult
    explanation: Explanation
    reveal: bool = False
    checks: bool = False
    warnings: tuple[str, ...] = ()

    def text(self, width: int | None = None) -> str:
        """The terminal text, at ``width`` columns (default: the terminal's, at most 100)."""
        from conformance.teaching.explain_text import render_text

        return render_text(self.explanation, width=width, show_checks=self.checks, reveal=self.reveal)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:  # a plain Python prompt shows the text too
        return self.text()

    def _repr_html_(self) -> str:
        """The HTML report's section for this case (pictures, sums, hover), styled under one class so
        that it leaves the notebook's own styles alone. An exercise shows only its text, with ``?``."""
        if self.explanation.exercise and not self.reveal:
            return _scoped_page(f"<pre>{html.escape(self.text())}</pre>", script=False)
        from conformance.reporting.html import _case_section

        section = _case_section(self.result, "notebook-" + re.sub(r"\W+", "-", self.result.name), True, True)
        notes = "".join(f'<p class="note">{html.escape(text)}</p>' for text in self._warning_notes())
        return _scoped_page(section + notes, script=True)

    def _warning_notes(self) -> list[str]:
        return [note.text for note in self.explanation.notes if note.kind == "warning"]


def _explain_case(case: Case, implementation: Any, reveal: bool, checks: bool, live: bool = False) -> CaseExplanation:
    from conformance.running.implementations import load_implementation
    from conformance.teaching.explain import build_explanation, run_quietly

    result, seen = run_quietly(case, load_implementation(implementation))
    explanation = build_explanation(result, warnings_seen=seen)
    if live:  # there is no file to point to
        explanation.location = "built from the module"
    return CaseExplanation(result, explanation, reveal, checks, seen)


def _scoped_page(body: str, script: bool) -> str:
    """``body`` in a ``<div class=HTML_CLASS>`` with the report's styles scoped to it (and its hover
    script, which finds the sections by their data attributes)."""
    from conformance.reporting.html import SCRIPT, STYLE

    parts = [f'<div class="{HTML_CLASS}">', f"<style>{scope_css(STYLE, '.' + HTML_CLASS)}</style>", body]
    if script:
        parts.append(f"<script>{SCRIPT}</script>")
    parts.append("</div>")
    return "\n".join(parts)


def scope_css(css: str, scope: str) -> str:
    """Every rule of ``css`` limited to elements under ``scope`` (``body``/``html`` become the scope
    itself), @media blocks included, so a notebook's own page keeps its styles.

    >>> scope_css("body { margin: 0; } h1, td.x { color: red; } @media (max-width: 1px) { p { x: y; } }", ".s")
    '.s { margin: 0; }\\n.s h1, .s td.x { color: red; }\\n@media (max-width: 1px) {\\n.s p { x: y; }\\n}'
    """
    out: list[str] = []
    position = 0
    while True:
        start = css.find("{", position)
        if start < 0:
            break
        selectors = css[position:start].strip()
        if selectors.startswith("@"):
            depth, end = 1, start + 1
            while depth and end < len(css):
                depth += {"{": 1, "}": -1}.get(css[end], 0)
                end += 1
            out.append(f"{selectors} {{\n{scope_css(css[start + 1 : end - 1], scope)}\n}}")
            position = end
            continue
        end = css.find("}", start)
        body = css[start + 1 : end].strip()
        scoped = []
        for selector in selectors.split(","):
            selector = selector.strip()
            if selector in ("body", "html"):
                scoped.append(scope)
            else:
                scoped.append(f"{scope} {LEADING_ROOT.sub('', selector)}")
        out.append(f"{', '.join(scoped)} {{ {body} }}")
        position = end + 1
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# A whole model


@dataclass(frozen=True)
class GroupedLayer:
    """One convolution of a model, as groups shape it."""

    name: str  # its name in model.named_modules()
    op: str  # Conv2d, ConvTranspose2d, ...
    in_channels: int
    out_channels: int
    groups: int
    kernel: tuple[int, ...]
    parameters: int  # weight and bias
    dense_parameters: int  # the same layer with groups=1
    multiply_adds: int | None  # for the input given (None without one)
    dense_multiply_adds: int | None
    positions: int | None  # output positions (a transposed layer: input positions) in the input given

    @property
    def in_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_per_group(self) -> int:
        return self.out_channels // self.groups

    @property
    def kind(self) -> str:
        """'dense', 'grouped', 'depthwise' or 'depthwise, multiplier m'."""
        if self.groups == 1:
            return "dense"
        if self.groups != self.in_channels:
            return "grouped"
        multiplier = self.out_channels // self.in_channels
        return "depthwise" if multiplier == 1 else f"depthwise, multiplier {multiplier}"


@dataclass
class ModelExplanation:
    """A model's convolutions, grouped ones listed: ``str()`` is a table, ``_repr_html_()`` the same
    as an HTML table."""

    model: str  # the model's class name
    layers: list[GroupedLayer] = field(default_factory=list)  # every convolution, in module order
    input_shape: tuple[int, ...] | None = None

    @property
    def grouped(self) -> list[GroupedLayer]:
        return [layer for layer in self.layers if layer.groups > 1]

    def rows(self) -> list[list[str]]:
        """The table: one row per grouped convolution."""
        rows = []
        for layer in self.grouped:
            macs = "-" if layer.multiply_adds is None else f"{layer.multiply_adds:,} of {layer.dense_multiply_adds:,}"
            rows.append(
                [
                    layer.name,
                    f"{layer.op} {layer.in_channels}→{layer.out_channels}, {'×'.join(map(str, layer.kernel))}",
                    str(layer.groups),
                    f"{layer.in_per_group}→{layer.out_per_group}",
                    layer.kind,
                    f"{layer.parameters:,} of {layer.dense_parameters:,}",
                    macs,
                ]
            )
        return rows

    HEADER: ClassVar[tuple[str, ...]] = (
        "layer",
        "op",
        "groups",
        "in→out per group",
        "kind",
        "parameters",
        "multiply-adds",
    )

    def summary(self) -> str:
        """One sentence: how many convolutions are grouped, and what the groups save in all."""
        grouped = self.grouped
        if not self.layers:
            return f"{self.model} has no convolution."
        if not grouped:
            count = f"{len(self.layers)} convolution" + ("" if len(self.layers) == 1 else "s")
            return f"{self.model} has {count}, none of them grouped (groups=1 everywhere)."
        total = sum(layer.parameters for layer in self.layers)
        dense = sum(layer.dense_parameters if layer.groups > 1 else layer.parameters for layer in self.layers)
        text = (
            f"{self.model}: {len(grouped)} of its {len(self.layers)} convolutions "
            f"{'is' if len(grouped) == 1 else 'are'} grouped. Its convolutions hold {total:,} parameters; with "
            f'groups=1 everywhere they would hold {dense:,} ({dense / total:.1f}×). In the table, "a of b" is '
            "the layer's count and the same layer's with groups=1."
        )
        if self.input_shape is not None and all(layer.multiply_adds is not None for layer in self.layers):
            macs = sum(layer.multiply_adds or 0 for layer in self.layers)
            dense_macs = sum(layer.dense_multiply_adds or 0 for layer in self.layers)
            text += (
                f" On an input of shape {self.input_shape} they do {macs:,} multiply-adds, against {dense_macs:,}"
                f" ({dense_macs / macs:.1f}×). That is not as large a speed-up: a grouped layer reads and writes as"
                " much data as its groups=1 twin while doing 1/groups of the arithmetic on it, so memory, not"
                " arithmetic, limits it (docs/explain.md has a measurement)."
            )
        else:
            text += " Pass input= to count multiply-adds."
        return text

    def __str__(self) -> str:
        from conformance.teaching.explain_text import terminal_width

        rows = self.rows()
        lines = textwrap.wrap(self.summary(), terminal_width(), break_on_hyphens=False)
        if rows:
            widths = [max(len(cell) for cell in column) for column in zip(self.HEADER, *rows, strict=True)]
            lines.append("")
            for row in [list(self.HEADER), *rows]:
                lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in self.HEADER)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in self.rows()
        )
        table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>" if body else ""
        return _scoped_page(f"<p>{html.escape(self.summary())}</p>{table}", script=False)


def explain_model(model: Any, input: Any = None) -> ModelExplanation:  # noqa: A002 - torch's word
    """Every convolution of ``model`` (a torch.nn.Module), with what its groups save; with ``input``
    (a sample batch) the model runs once, without gradients, to count multiply-adds per layer."""
    import torch

    convolutions = [(name, module) for name, module in model.named_modules() if _conv_type(module) is not None]
    positions: dict[str, int] = {}
    if input is not None:
        hooks = []

        def record(name: str, transposed: bool) -> Any:
            def hook(module: Any, inputs: tuple, output: Any) -> None:
                # a convolution multiplies each weight once per output position, a transposed one once per
                # input position (it scatters each input value through its row of the weight)
                shape = inputs[0].shape if transposed else output.shape
                spatial = len(module.kernel_size)
                batch = shape[0] if len(shape) == spatial + 2 else 1
                positions[name] = positions.get(name, 0) + int(batch) * math.prod(int(n) for n in shape[-spatial:])

            return hook

        for name, module in convolutions:
            transposed = str(_conv_type(module)).startswith("ConvTranspose")
            hooks.append(module.register_forward_hook(record(name, transposed)))
        try:
            with torch.no_grad():
                model(input)
        finally:
            for hook in hooks:
                hook.remove()
    layers = []
    for name, module in convolutions:
        kernel = tuple(int(k) for k in module.kernel_size)
        weights = int(module.weight.numel())
        bias = int(module.bias.numel()) if module.bias is not None else 0
        groups = int(module.groups)
        count = positions.get(name)
        layers.append(
            GroupedLayer(
                name=name or type(module).__name__,
                op=_conv_type(module) or type(module).__name__,
                in_channels=int(module.in_channels),
                out_channels=int(module.out_channels),
                groups=groups,
                kernel=kernel,
                parameters=weights + bias,
                dense_parameters=weights * groups + bias,
                multiply_adds=None if count is None else weights * count,
                dense_multiply_adds=None if count is None else weights * groups * count,
                positions=count,
            )
        )
    shape = tuple(int(n) for n in input.shape) if input is not None and hasattr(input, "shape") else None
    return ModelExplanation(type(model).__name__, layers, shape)
