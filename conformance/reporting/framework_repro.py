"""Framework-only repro scripts for the built-in columns: what a maintainer can paste upstream.

A built-in adapter (conformance/frameworks/) is a few lines of translation around the framework's
own ops. :func:`adapter_source` copies that translation code — the adapter module and the
``conformance`` modules it imports (layer.py, tf_common.py, ...), in dependency order, each
``from conformance... import`` line replaced by ``pass`` — into one self-contained block, so the
script imports only the framework and NumPy (and ml_dtypes, which every framework here depends on,
for a bfloat16 case). The case's tensors and torch's output (the expected answer, computed by torch
and checked against the reference by the case library) are stored beside the script in an .npz;
the script runs the framework, prints where it disagrees, and exits 1 while it does (0 once fixed).
Paths are relative to the script, so the folder can be zipped and sent.

>>> "def explicit_padding(" in adapter_source("conformance.frameworks.jax_lax")
True
>>> [line for line in adapter_source("conformance.frameworks.jax_lax").splitlines()
...  if line.lstrip().startswith(("from conformance", "import conformance"))]
[]
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path
from typing import Any

import numpy as np

PACKAGE = "conformance"


def adapter_source(module_name: str) -> str:
    """The adapter module's source with every ``conformance`` module it imports inlined before it."""
    ordered: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        source = inspect.getsource(importlib.import_module(name))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
                visit(node.module)  # type: ignore[arg-type]
        ordered.append(f"# ---- {name} " + "-" * max(0, 90 - len(name)) + "\n" + _standalone(source))

    visit(module_name)
    return "\n\n".join(ordered)


def _standalone(source: str) -> str:
    """``source`` without its ``conformance`` imports (each becomes ``pass``: the names are defined
    above in the bundle) and without ``from __future__`` lines (the script has its own)."""
    lines = source.splitlines()
    replaced: dict[int, str] = {}
    dropped: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom):
            continue
        module = node.module or ""
        if module == "__future__":
            dropped.add(node.lineno - 1)
        elif module.startswith(PACKAGE):
            replaced[node.lineno - 1] = " " * node.col_offset + f"pass  # the names of {module}: defined above"
            dropped.update(range(node.lineno, node.end_lineno or node.lineno))
    return "\n".join(replaced.get(i, line) for i, line in enumerate(lines) if i not in dropped)


def write_framework_repro(
    result: Any,
    builtin_name: str,
    module_name: str,
    directory: Path,
    stem: str,
    environment: dict[str, str],
    allowed_output: np.ndarray | None = None,
) -> tuple[Path, Path]:
    """Write ``DIR/<stem>.py`` (framework-only) and ``DIR/<stem>.npz`` for a failed case of a built-in;
    ``allowed_output``: the harness's per-element allowance (else the case's rtol/atol)."""
    run, case = result.run, result.case
    directory.mkdir(parents=True, exist_ok=True)
    script, data = directory / f"{stem}.py", directory / f"{stem}.npz"
    tensors = run.tensors
    arrays: dict[str, np.ndarray] = {"input": np.asarray(tensors.input), "weight": np.asarray(tensors.weight)}
    if tensors.bias is not None:
        arrays["bias"] = np.asarray(tensors.bias)
    if run.torch.output is not None:
        arrays["expected"] = np.asarray(run.torch.output, dtype=np.float64)
    if allowed_output is not None:
        arrays["allowed_output"] = np.asarray(allowed_output, dtype=np.float64)
    rtol, atol = case.rtol_atol
    settings = {
        "CASE": case.name,
        "FRAMEWORK": builtin_name,
        "HARNESS_VERDICT": f"[{result.kind}] {result.message.splitlines()[0] if result.message else ''}"[:300],
        "OP": case.conv.functional_name,
        "KWARGS": {key: tuple(v) if isinstance(v, list) else v for key, v in case.conv.functional_kwargs().items()},
        "DTYPE": case.dtype,
        "TORCH_REFUSES": None if run.torch.error is None else f"{type(run.torch.error).__name__}: {run.torch.error}",
        "RTOL": rtol,
        "ATOL": atol,
        "ENVIRONMENT": dict(environment),
    }
    np.savez(data, **arrays)  # type: ignore[arg-type]
    assignments = "\n".join(f"{key} = {value!r}" for key, value in settings.items())
    text = (
        _TEMPLATE.replace("{{CASE}}", case.name)
        .replace("{{FRAMEWORK}}", builtin_name)
        .replace("{{SETTINGS}}", assignments)
        .replace("{{DATA}}", repr(data.name))
        .replace("{{ADAPTER}}", adapter_source(module_name))
    )
    script.write_text(text, encoding="utf-8")
    script.chmod(0o755)
    return script, data


_TEMPLATE = '''#!/usr/bin/env python3
"""Conformance case {{CASE}} on {{FRAMEWORK}}, as a standalone script: it needs only the framework and
NumPy (no torch, no conformance). The layer is built with the framework's own API (the adapter code
below); the expected output is torch's, stored beside this script. Exit status: 1 while the framework
disagrees, 0 when it agrees."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

{{SETTINGS}}

HERE = Path(__file__).resolve().parent
DATA = dict(np.load(HERE / {{DATA}}))

# ======== how the layer is built: the adapter's translation code, verbatim ========
{{ADAPTER}}
# ======== end of the adapter code ========


def as_case_dtype(array):
    if array is None:
        return None
    if DTYPE == "bfloat16":
        import ml_dtypes  # NumPy's bfloat16 (every framework here depends on it)

        return np.asarray(array).astype(ml_dtypes.bfloat16)
    return np.asarray(array).astype(DTYPE)


def verdict(error):
    judge = globals().get("judge_error")
    decided = judge(error) if judge is not None else None
    if decided is not None:
        return decided
    if isinstance(error, NotImplementedError):
        return "unsupported"
    return "refused" if isinstance(error, (ValueError, RuntimeError)) else "crashed"


def main():
    print(f"case {CASE} through {FRAMEWORK}; the harness said: {HARNESS_VERDICT}")
    print(f"settings: {ENVIRONMENT}")
    x, weight, bias = (as_case_dtype(DATA.get(key)) for key in ("input", "weight", "bias"))
    print(f"{OP}(input {x.shape}, weight {weight.shape}, bias {None if bias is None else bias.shape}, "
          f"**{KWARGS}) in {DTYPE}", flush=True)
    try:
        output = np.asarray(globals()[OP](x, weight, bias, **KWARGS))
    except Exception as error:  # the framework's answer, not a problem of this script
        print(f"{FRAMEWORK} raised {type(error).__name__}: {error} ({verdict(error)})")
        if TORCH_REFUSES is not None and verdict(error) == "refused":
            print(f"AGREE: torch refuses the layer too ({TORCH_REFUSES})")
            return 0
        print("DISAGREE: " + (f"torch refuses the layer ({TORCH_REFUSES}), {FRAMEWORK} {verdict(error)}"
                              if TORCH_REFUSES else f"torch computes an output of shape {DATA['expected'].shape}"))
        return 1
    print(f"{FRAMEWORK}: output of shape {output.shape}, dtype {output.dtype}")
    if TORCH_REFUSES is not None:
        print(f"DISAGREE: torch refuses the layer ({TORCH_REFUSES}), {FRAMEWORK} computed an output")
        return 1
    expected = DATA["expected"]
    if output.shape != expected.shape:
        print(f"DISAGREE: shapes differ: {FRAMEWORK} {output.shape}, expected (torch) {expected.shape}")
        return 1
    if str(output.dtype) != DTYPE:
        print(f"DISAGREE: {FRAMEWORK} returned {output.dtype}, the layer's dtype is {DTYPE}")
        return 1
    mine = output.astype(np.float64)
    allowed = DATA.get("allowed_output", ATOL + RTOL * np.abs(expected))
    error = np.abs(mine - expected)
    error = np.where(np.isnan(mine) & np.isnan(expected), 0.0, np.where(np.isnan(error), np.inf, error))
    bad = error > allowed
    if not bad.any():
        print("AGREE: the failure did not reproduce")
        return 0
    worst = np.unravel_index(int(np.argmax(np.where(bad, error - allowed, -np.inf))), error.shape)
    print(f"DISAGREE: {int(bad.sum())} of {error.size} elements differ beyond the allowance; worst at "
          f"{tuple(int(i) for i in worst)}: {FRAMEWORK} {mine[worst]:.9g}, expected {expected[worst]:.9g}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
'''
