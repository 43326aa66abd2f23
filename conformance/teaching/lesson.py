"""The lesson's content, built from the tutorial folder: the steps, the exercises and their hidden
answers. :mod:`conformance.teaching.lesson_page` writes it as a page.

Each case file under the tutorial folder is one step, in file order; its title comes from the
file's first comment line (``# Learning path, step 2 of 10: two groups.``) or else from the file
name. A new file is a new step, with no code change. A case tagged ``exercise`` becomes an
exercise: its values are not written into the page; only a hash of each answer (and of each
likely mistake's values) is, so the page can tell a right answer, and name a mistake, without
showing either before the learner submits.

    >>> canonical(2.1000000001), canonical(-0.0), answer_hash("x", canonical(650))
    ('2.100', '0.000', 'ab8028ae')
    >>> answer_hash("x", canonical(650.0001)) == answer_hash("x", canonical(650)) != answer_hash("x", canonical(651))
    True
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from conformance.cases.errors import CaseError
from conformance.cases.loader import load_file
from conformance.cases.schema import Case
from conformance.running.runner import CaseTensors, make_tensors
from conformance.teaching.element_sums import element_sum
from conformance.teaching.explain import format_number
from conformance.teaching.lesson_mistakes import correct_output, wrong_outputs
from conformance.teaching.pictures import channel_permutation

TITLE_LINE = re.compile(r"^#\s*Learning path,\s*step\s+\d+(?:\s+of\s+\d+)?\s*:\s*(?P<title>.+?)\s*$", re.IGNORECASE)
MAX_SUMS = 12  # output elements written out as sums per case; a larger output shows its first and last group's
MAX_TITLE = 90  # characters of a step title taken from its comment
MAX_EXERCISE_BOXES = 8  # answer boxes per exercise; a larger output asks for its first elements only


class LessonError(Exception):
    """The tutorial folder cannot make a lesson (missing, empty, or a number torch disagrees with)."""


def canonical(value: float) -> str:
    """A number as the page compares it: rounded to 3 decimals, ``-0`` as ``0`` (JS writes it the same way)."""
    return f"{round(float(value), 3) + 0.0:.3f}"


def answer_hash(key: str, text: str) -> str:
    """FNV-1a (32-bit) of ``key|text`` as 8 hex digits: the page stores this, not the answer.

    It hides the answer from reading, not from a determined search; that is all an exercise needs.
    lesson.js computes the same hash of what the learner typed.
    """
    h = 0x811C9DC5
    for byte in f"{key}|{text}".encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


def number(value: float, dtype: str = "float64") -> str:
    """A value as the lesson prints it (the shortest text that reads back, at most 7 digits)."""
    return format_number(float(value), dtype, 7)


@dataclass
class Layer:
    """What the page's pictures need of a layer (JSON for lesson.js)."""

    type: str
    in_channels: int
    out_channels: int
    groups: int
    kernel: list[int]
    transposed: bool
    input_values: list[float] | None = None  # per channel, for a one-pixel input
    output_values: list[float] | None = None  # per channel, for a one-pixel output
    weight_shape: list[int] = field(default_factory=list)
    weight_values: list[float] | None = None  # one number per kernel when kernels are 1 element
    permutation: list[int] | None = None  # a channel shuffle: output o copies input permutation[o]

    def as_json(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if value is not None}


@dataclass
class SumLine:
    """One output element written out: ``y[0,2] = 5×10 + 6×100 = 650``; ``out`` its channel."""

    label: str
    terms: str
    value: str
    out: int
    group: int


@dataclass
class Exercise:
    """The hidden part of an exercise: the boxes' labels, each answer's hash, the mistakes' hashes."""

    key: str
    labels: list[str]
    answer_hashes: list[str]
    mistake_hashes: dict[str, str]  # hash of the whole vector -> what that mistake is
    shape: list[int]
    arrays: dict[str, Any] = field(default_factory=dict)  # the layer as conv.js takes it, to reveal the answer


def conv_js_arguments(case: Case, tensors: CaseTensors) -> dict[str, Any]:
    """The case's input, weight, bias and options as conv.js's ``convolve`` takes them (the input
    batched), so the page computes an answer only when the learner asks for it."""
    conv = case.conv
    x = np.asarray(tensors.input, dtype=np.float64)
    if x.ndim == conv.spatial_dims + 1:
        x = x[None]
    options: dict[str, Any] = {
        key: (list(value) if isinstance(value, tuple) else value) for key, value in conv.functional_kwargs().items()
    }
    options["transposed"] = conv.transposed
    return {
        "x": [float(v) for v in x.reshape(-1)],
        "xShape": list(x.shape),
        "w": [float(v) for v in np.asarray(tensors.weight, dtype=np.float64).reshape(-1)],
        "wShape": list(tensors.weight.shape),
        "b": None if tensors.bias is None else [float(v) for v in np.asarray(tensors.bias).reshape(-1)],
        "options": options,
    }


@dataclass
class CaseBlock:
    """One case of a step: its title, prose, layer, values and either its sums or its exercise."""

    name: str
    title: str
    description: str
    layer: Layer
    signature: str
    inputs: list[str]  # "x[0] = 1" lines, per channel (or a summary for large inputs)
    weights: list[str]
    sums: list[SumLine]
    cost: str
    exercise: Exercise | None = None


@dataclass
class Step:
    """One file of the tutorial folder."""

    number: int
    title: str
    file: str
    cases: list[CaseBlock]


@dataclass
class Lesson:
    steps: list[Step]
    problems: list[str]  # broken cases, each named by file: left out of the lesson, reported
    torch_version: str
    seed: CaseBlock | None = None  # the introduction's digit table (cases/seed/groups3.yaml)
    spot_the_bug: dict[str, Any] | None = None
    output_size: dict[str, Any] | None = None


def step_title(file: Path) -> str:
    """The step's title: the first sentence of the file's opening comment (``# Learning path, step 2
    of 10: two groups.`` -> ``two groups``), else the file name (``02_grouped`` -> ``grouped``)."""
    comment = []
    for line in file.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("#").strip())
    match = TITLE_LINE.match("# " + " ".join(comment)) if comment else None
    if match:
        sentence = re.split(r"(?<=[.?!])\s|:\s", match.group("title"))[0].rstrip(".")
        if len(sentence) > MAX_TITLE:
            sentence = sentence[:MAX_TITLE].rsplit(" ", 1)[0] + " …"
        return prose(sentence)
    words = re.sub(r"^\d+[_-]*", "", file.stem).replace("_", " ").strip()
    return words or file.stem


def case_title(case: Case) -> str:
    """``tutorial/06_separable/1_depthwise`` -> ``depthwise``; a one-case file -> ``""``."""
    parts = case.name.split("/")
    if len(parts) < 3:
        return ""
    return re.sub(r"^\d+[_-]*", "", parts[-1]).replace("_", " ")


def prose(text: str) -> str:
    """A case description for reading: one paragraph, ``×`` for a product of numbers (``1x9`` -> ``1×9``)."""
    text = " ".join(text.split())
    return re.sub(r"(?<=[\d\])])\s?x\s?(?=[\d(\[WP-])", "×", text)


def _per_channel(values: np.ndarray, channels: int, channel_axis: int) -> list[float] | None:
    """The per-channel values of a one-sample, one-position tensor; else None."""
    if values.size != channels:
        return None
    return [float(v) for v in np.moveaxis(values, channel_axis, 0).reshape(channels)]


def build_layer(case: Case, tensors: CaseTensors, output: np.ndarray) -> Layer:
    conv = case.conv
    w = np.asarray(tensors.weight, dtype=np.float64)
    x = np.asarray(tensors.input, dtype=np.float64)
    channel_axis = x.ndim - conv.spatial_dims - 1
    kernel = [int(k) for k in w.shape[2:]]
    return Layer(
        type=conv.type,
        in_channels=conv.in_channels,
        out_channels=conv.out_channels,
        groups=conv.groups,
        kernel=kernel,
        transposed=conv.transposed,
        input_values=_per_channel(x, conv.in_channels, channel_axis),
        output_values=_per_channel(output, conv.out_channels, channel_axis),
        weight_shape=[int(s) for s in w.shape],
        weight_values=[float(v) for v in w.reshape(-1)] if math.prod(kernel) == 1 and w.size <= 256 else None,
        permutation=channel_permutation(case, tensors),
    )


def _index(position: tuple[int, ...]) -> str:
    return "y[" + ",".join(str(i) for i in position) + "]"


def sum_lines(case: Case, tensors: CaseTensors, output: np.ndarray) -> list[SumLine]:
    """Output elements as sums of products, each product ``weight×input``; all of a small output,
    else the elements of the first and the last group."""
    batched = output if output.ndim == case.conv.spatial_dims + 2 else output[None]
    positions = list(np.ndindex(*batched.shape))
    if len(positions) > MAX_SUMS:
        per_group = batched.shape[1] // case.conv.groups
        last = batched.shape[1] - per_group
        first = [p for p in positions if p[1] < per_group][: MAX_SUMS // 2]
        final = [p for p in positions if p[1] >= last][: MAX_SUMS // 2]
        positions = first + final
    lines = []
    for position in positions:
        element = element_sum(case, tensors, position)
        terms = [f"{number(p.weight)}×{number(p.value)}" for p in element.terms if p.value != 0 and p.weight != 0]
        if element.bias:
            terms.append(number(element.bias))
        shown = position if output.ndim == batched.ndim else position[1:]
        lines.append(
            SumLine(_index(shown), " + ".join(terms) or "0", number(element.total), position[1], element.group)
        )
    return lines


def moves(layer: Layer) -> list[SumLine]:
    """A shuffle's outputs as the channels they copy: ``out 1 = in 2 = 2200``, no products."""
    values = layer.output_values or []
    return [
        SumLine(f"out {o}", f"in {c}", number(values[o]) if o < len(values) else "", o, 0)
        for o, c in enumerate(layer.permutation or [])
    ]


def _channel_lines(name: str, values: np.ndarray, channel_axis: int, most: int = 8) -> list[str]:
    """``x[c] = …`` per channel (a channel's values flattened), at most ``most`` channels."""
    per_channel = np.moveaxis(np.asarray(values, dtype=np.float64), channel_axis, 0)
    lines = []
    for c in range(min(per_channel.shape[0], most)):
        flat = per_channel[c].reshape(-1)
        text = ", ".join(number(v) for v in flat[:12]) + (" …" if flat.size > 12 else "")
        lines.append(f"{name}[{c}] = {text if flat.size == 1 else '[' + text + ']'}")
    if per_channel.shape[0] > most:
        lines.append(f"… {per_channel.shape[0] - most} more channels")
    return lines


def cost_sentence(case: Case, layer: Layer, output: np.ndarray) -> str:
    if layer.permutation is not None:
        return "Cost: 0 multiply-adds. A shuffle moves channels; it computes nothing."
    conv = case.conv
    kernel = math.prod(layer.kernel)
    weights = conv.in_channels * conv.out_channels // conv.groups * kernel
    if conv.transposed:
        x_size = math.prod(make_spatial(case))
        macs = conv.in_channels * x_size * (conv.out_channels // conv.groups) * kernel
    else:
        macs = int(output.size) * (conv.in_channels // conv.groups) * kernel
    text = f"Cost: {weights} weights, {macs} multiply-adds"
    if conv.groups > 1:
        text += (
            f"; with groups=1 the same layer needs {weights * conv.groups} and {macs * conv.groups} (×{conv.groups})"
        )
    return text + "."


def make_spatial(case: Case) -> tuple[int, ...]:
    shape = case.input_shape
    return tuple(int(s) for s in shape[len(shape) - case.conv.spatial_dims :])


def exercise_of(case: Case, tensors: CaseTensors, output: np.ndarray) -> Exercise:
    """The answer boxes and hashes of an exercise case (its own output never leaves Python as text)."""
    key = case.name
    flat = output.reshape(-1)
    shown = list(np.ndindex(*output.shape))[:MAX_EXERCISE_BOXES]
    labels = [_index(p) for p in shown]
    hashes = [answer_hash(f"{key}#{i}", canonical(flat[i])) for i in range(len(shown))]
    mistakes: dict[str, str] = {}
    for wrong in wrong_outputs(case, tensors):
        vector = ",".join(canonical(v) for v in wrong.output.reshape(-1)[: len(shown)])
        mistakes.setdefault(answer_hash(key, vector), wrong.explanation)
    shape = [int(s) for s in output.shape]
    return Exercise(key, labels, hashes, mistakes, shape, conv_js_arguments(case, tensors))


def case_block(case: Case, torch_check: bool = True) -> CaseBlock:
    """One case as the lesson shows it; raises LessonError when torch disagrees with the reference."""
    tensors = make_tensors(case)
    output = correct_output(case, tensors)
    if torch_check:
        from conformance.running.torch_oracle import torch_forward

        theirs = np.asarray(torch_forward(case, tensors.input, tensors.weight, tensors.bias), dtype=np.float64)
        if theirs.shape != output.shape or not np.allclose(theirs, output, rtol=1e-5, atol=1e-6):
            raise LessonError(f"{case.location}: torch and the reference disagree on {case.name}; not a lesson")
    conv = case.conv
    layer = build_layer(case, tensors, output)
    exercise = "exercise" in case.tags
    if exercise:  # the pictures would label each output with its value: the answer
        layer.output_values = None
    channel_axis = np.asarray(tensors.input).ndim - conv.spatial_dims - 1
    from conformance.teaching.explain import signature

    return CaseBlock(
        name=case.name,
        title=case_title(case),
        description=prose(case.description),
        layer=layer,
        signature=signature(conv),
        inputs=_channel_lines("x", tensors.input, channel_axis),
        weights=_channel_lines("W", tensors.weight, 0),
        sums=[] if exercise else (moves(layer) if layer.permutation else sum_lines(case, tensors, output)),
        cost=cost_sentence(case, layer, output),
        exercise=exercise_of(case, tensors, output) if exercise else None,
    )


def build_lesson(tutorial: Path, seed_file: Path | None = None, torch_check: bool = True) -> Lesson:
    """The lesson of every case file in ``tutorial`` (one step each, in file-name order).

    A broken case is left out and listed in ``problems``, naming its file; the rest still make the
    lesson. Raises LessonError when the folder holds no case file.
    """
    files = sorted(p for p in Path(tutorial).glob("*.y*ml") if p.suffix in (".yaml", ".yml"))
    if not files:
        raise LessonError(f"{tutorial}: no case files (*.yaml) to make a lesson of")
    steps, problems = [], []
    for number_, file in enumerate(files, start=1):
        blocks = []
        for item in load_file(file):
            if isinstance(item, CaseError):
                problems.append(str(item))
                continue
            try:
                blocks.append(case_block(item, torch_check))
            except (LessonError, ValueError) as error:
                problems.append(f"{file}: {item.name}: {error}")
        if blocks:
            steps.append(Step(number_, step_title(file), file.name, blocks))
    import torch

    seed = None
    if seed_file is not None and seed_file.is_file():
        seed_cases = [c for c in load_file(seed_file) if isinstance(c, Case)]
        seed = case_block(seed_cases[0], torch_check) if seed_cases else None
    lesson = Lesson(steps, problems, str(torch.__version__).split("+")[0], seed)
    lesson.spot_the_bug = spot_the_bug(seed_cases[0]) if seed is not None else None
    lesson.output_size = output_size_exercise()
    return lesson


def spot_the_bug(case: Case) -> dict[str, Any] | None:
    """A wrong output of ``case`` and the mistakes to choose from; the right choice only as a hash."""
    tensors = make_tensors(case)
    wrongs = wrong_outputs(case, tensors)
    if len(wrongs) < 2:
        return None
    shown = wrongs[min(1, len(wrongs) - 1)]  # not the first option: the answer is not "the top one"
    key = case.name + "#spot"
    return {
        "key": key,
        "case": case.name,
        "wrong": [number(v) for v in shown.output.reshape(-1)],
        "right": [number(v) for v in correct_output(case, tensors).reshape(-1)],
        "options": [{"name": w.name, "text": SPOT_OPTIONS[w.name]} for w in wrongs],
        "answer": answer_hash(key, shown.name),
    }


SPOT_OPTIONS = {
    "groups_ignored": "every output read every input channel (groups ignored)",
    "interleaved_groups": "input channel c was put in group c % groups (interleaved groups)",
    "weight_over_all_inputs": "W[o, j] multiplied input channel j, forgetting the group's offset",
    "transposed_weight_as_conv": "the transposed weight was read as (out, in/G)",
}


def output_size_exercise() -> dict[str, Any]:
    """How tall is the output of a strided, dilated, padded layer; wrong formulas recognised."""
    size, kernel, stride, padding, dilation = 12, 3, 2, 1, 2
    right = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    wrong = {
        "you rounded up: the formula takes the floor of the division": -(
            -(size + 2 * padding - dilation * (kernel - 1) - 1) // stride
        )
        + 1,
        "you left out the dilation: a 3-tap kernel with dilation 2 spans 5 rows": (
            size + 2 * padding - (kernel - 1) - 1
        )
        // stride
        + 1,
        "you padded one side only: padding p adds p rows above and p below": (
            size + padding - dilation * (kernel - 1) - 1
        )
        // stride
        + 1,
        "you left out the +1: the first window sits at row 0": (size + 2 * padding - dilation * (kernel - 1) - 1)
        // stride,
        "you left out the stride: with stride 2 the window moves 2 rows at a time": size
        + 2 * padding
        - dilation * (kernel - 1),
    }
    key = "output_size"
    mistakes: dict[str, list[str]] = {}
    for text, value in wrong.items():
        if value != right:
            mistakes.setdefault(answer_hash(key, canonical(value)), []).append(text)
    return {
        "key": key,
        "layer": {"size": size, "kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation},
        "answer": answer_hash(key, canonical(right)),
        "mistakes": {h: "; or ".join(texts) for h, texts in mistakes.items()},
    }
