"""Fuzzing: hypothesis draws cases, the suite's own runner judges them, a disagreement is shrunk
to a minimal case and written as a standalone YAML case file.

A drawn document goes through the same parser as a case file (:func:`parse_case`) and the same
runner (:func:`run_case`), so a fuzz verdict is exactly the verdict the library would give; the
written file is the document itself (random tensors turned into explicit values where small),
loaded back and run again to confirm it reproduces.

A campaign is deterministic for a given seed: hypothesis gets ``@seed(S)``, no example database
and no time-dependent settings. Several campaigns (seeds S, S+1, …) can run in parallel.

>>> from conformance.running.implementations import load_implementation
>>> run_campaign(load_implementation(None), max_examples=5, seed=1).finding is None
True
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import numpy as np
import torch
import yaml
from hypothesis import HealthCheck, Phase, Verbosity, given, settings

from conformance.cases.errors import CaseError
from conformance.cases.loader import load_file
from conformance.cases.schema import Case, parse_case
from conformance.cases.yaml_loader import Document
from conformance.running.implementations import Implementation
from conformance.running.runner import PASSED, SKIPPED, CaseResult, CaseRunner, make_tensors, run_case
from conformance.tools.strategies import FUZZ_OPS, DrawnCase, case_documents

IN_MEMORY_FILE = Path("<fuzz>")
MAX_WRITTEN_VALUES = 512  # random tensors up to this size are written out as explicit values
# torch warnings that fuzzed layers trigger on purpose (the same ones pyproject.toml filters).
QUIET_WARNINGS = ("Initializing zero-element tensors is a no-op", "Using padding='same' with even kernel lengths")


class Disagreement(Exception):
    """The implementation and torch disagreed on a drawn case (hypothesis shrinks on this)."""

    def __init__(self, document: dict[str, Any], result: CaseResult) -> None:
        super().__init__(result.message)
        self.document, self.result = document, result


class GeneratorBug(Exception):
    """A drawn document the case loader refuses: a bug in conformance/tools/strategies.py."""


@dataclass
class Finding:
    """The minimal disagreeing case of a campaign."""

    document: dict[str, Any]
    message: str  # the verdict's summary
    seed: int
    found_at: int  # the example at which the first disagreement showed
    result: CaseResult | None = None  # the full verdict (None once sent across processes)


@dataclass
class CampaignResult:
    seed: int
    examples: int  # cases run, shrinking included
    finding: Finding | None = None


def build_case(document: dict[str, Any], name: str = "fuzz", file: Path = IN_MEMORY_FILE) -> Case:
    """The :class:`Case` a file holding ``document`` would give (same parser as the loader)."""
    return parse_case(Document(document, {}, 0, 1), file, name)


def implemented_ops(implementation: Implementation) -> tuple[str, ...]:
    """The ops (torch.nn module names) ``implementation`` defines, in :data:`FUZZ_OPS` order: a
    module plug-in's functions, or Conv2d for a single function.

    >>> from conformance.running.implementations import load_implementation
    >>> implemented_ops(load_implementation("reference_impl:conv2d_loops"))
    ('Conv2d',)
    """
    functions = getattr(implementation, "functions", None) or {"conv2d": implementation.function}
    names = {op: f"conv_transpose{op[-2]}d" if op.startswith("ConvTranspose") else f"conv{op[-2]}d" for op in FUZZ_OPS}
    return tuple(op for op in FUZZ_OPS if names[op] in functions)


def run_campaign(
    implementation: Implementation,
    *,
    max_examples: int = 200,
    seed: int = 0,
    invalid_rate: float = 0.1,
    ops: tuple[str, ...] | None = None,
    on_example: Callable[[DrawnCase], None] | None = None,
) -> CampaignResult:
    """Run up to ``max_examples`` drawn cases; on a disagreement, shrink it and return it.

    ``ops``: the torch.nn modules to draw (default: every op the implementation defines, see
    :func:`implemented_ops`). ``on_example`` sees every drawn case (shrinking included), e.g. to
    record what was drawn.
    """
    ops = tuple(ops) if ops else implemented_ops(implementation)
    examples = 0
    runner = CaseRunner(implementation)  # one run for the campaign: torch is warmed up once per op and dtype
    found_at: int | None = None

    @settings(
        max_examples=max_examples,
        database=None,
        derandomize=False,
        deadline=None,
        verbosity=Verbosity.quiet,
        phases=(Phase.generate, Phase.shrink),
        print_blob=False,
        report_multiple_bugs=False,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )
    @hypothesis.seed(seed)
    @given(case_documents(invalid_rate=invalid_rate, ops=ops))
    def probe(drawn: DrawnCase) -> None:
        nonlocal examples, found_at
        examples += 1
        if on_example is not None:
            on_example(drawn)
        try:
            case = build_case(drawn.document)
        except CaseError as exc:
            raise GeneratorBug(f"the case loader refused a drawn case: {exc}\n{drawn.document}") from exc
        result = runner.run(case)
        if result.status not in (PASSED, SKIPPED):  # skipped: an op or a backward the implementation lacks
            found_at = found_at or examples
            raise Disagreement(drawn.document, result)

    threads = torch.get_num_threads()
    # Fuzzed tensors are tiny: starting torch's worker threads costs more than the convolution,
    # twenty times more on a busy machine. One thread, restored afterwards.
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            for message in QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            probe()
    except Disagreement as exc:  # hypothesis re-raises the shrunk example's exception
        finding = Finding(exc.document, exc.result.message, seed, found_at or examples, exc.result)
        return CampaignResult(seed, examples, finding)
    finally:
        torch.set_num_threads(threads)
    return CampaignResult(seed, examples)


def worker_seeds(seed: int, workers: int) -> list[int]:
    """The seed range a parallel campaign splits across workers: worker i runs seed ``seed + i``.

    >>> worker_seeds(100, 3)
    [100, 101, 102]
    """
    return [seed + i for i in range(workers)]


def examples_per_worker(max_examples: int, workers: int) -> int:
    """Each worker's share of the budget (rounded up, so the total is at least ``max_examples``)."""
    return max(1, math.ceil(max_examples / workers))


# --- writing a finding as a case file --------------------------------------------------------


def _plain_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def standalone_document(document: dict[str, Any], name: str) -> dict[str, Any]:
    """``document`` with small random tensors written as explicit values.

    The values are those the random spec generates, in the case's dtype, so the file gives
    bit-identical tensors; a large tensor keeps its seeded random spec (also reproducible).
    """
    tensors = make_tensors(build_case(document, name))
    written = dict(document)
    for role, array in (("input", tensors.input), ("weight", tensors.weight), ("bias", tensors.bias)):
        spec = document.get(role)
        if array is None or not isinstance(spec, dict) or "random" not in spec or array.size > MAX_WRITTEN_VALUES:
            continue
        values = [_plain_number(v) for v in np.asarray(array, dtype=np.float64).ravel().tolist()]
        written[role] = {"values": values, **({"shape": spec["shape"]} if "shape" in spec else {})}
    return written


def dump_case(document: dict[str, Any], comments: list[str]) -> str:
    """YAML text for a case document: comments first, one top-level key after another."""
    lines = [f"# {line}" if line else "#" for line in comments]
    for key, value in document.items():
        if isinstance(value, (dict, list)):  # flow style for collections of scalars: [1, 2], {a: 1}
            text = yaml.safe_dump({key: value}, default_flow_style=None, sort_keys=False, width=110)
        else:  # a scalar on one line, however long
            text = yaml.safe_dump({key: value}, default_flow_style=False, width=math.inf)
        lines.append(text.rstrip())
    return "\n".join(lines) + "\n"


def reproduce_command(path: Path | str, impl_spec: str | None) -> str:
    return f"conformance run {path}" + (f" --impl {impl_spec}" if impl_spec else "")


def write_finding(finding: Finding, out_dir: Path | str, impl_spec: str | None) -> Path:
    """Write the finding as ``out_dir/fuzz_<digest>.yaml`` (the digest names the configuration)."""
    digest = hashlib.sha256(json.dumps(finding.document, sort_keys=True).encode()).hexdigest()[:10]
    path = Path(out_dir) / f"fuzz_{digest}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    what = (
        "invalid layer: torch and the implementation under test must both refuse it"
        if finding.document.get("expect_error")
        else "the implementation under test must agree with torch"
    )
    document = {
        "name": f"fuzz/{digest}",
        "description": f"Found by conformance fuzz (seed {finding.seed}), shrunk by hypothesis; {what}.",
        **standalone_document(finding.document, f"fuzz/{digest}"),
        "tags": ["fuzz"],
    }
    comments = [
        f"Found by `conformance fuzz --seed {finding.seed}"
        + (f" --impl {impl_spec}`" if impl_spec else "`")
        + f" at example {finding.found_at}, then shrunk to this minimal case.",
        f"Verdict then: {finding.message}",
        f"Reproduce: {reproduce_command(path, impl_spec)}",
        "",
    ]
    path.write_text(dump_case(document, comments), encoding="utf-8")
    return path


def rerun_written(path: Path, implementation: Implementation) -> CaseResult:
    """Load the written file with the ordinary loader and run it: it must still fail."""
    items = load_file(path)
    if len(items) != 1 or not isinstance(items[0], Case):
        raise GeneratorBug(f"{path} does not load as one case: {items}")
    with warnings.catch_warnings():
        for message in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        return run_case(items[0], implementation)
