"""``--repro DIR``: a copy-paste reproduction of each failing case.

For a failing case NAME, :func:`write_repro` writes ``DIR/<NAME>.py`` and ``DIR/<NAME>.npz`` (its
tensors, plus the harness's per-element allowance). Scripts are relocatable: the data is read
from beside the script, a plug-in loaded from a file is copied beside it, a plug-in module is
imported by name (from the working folder or the installed packages); no absolute path is written.

* A plug-in's script needs NumPy, torch and the plug-in (and ml_dtypes for a bfloat16 NumPy
  plug-in): it calls the implementation and ``torch.nn.<Conv>`` on the same tensors, exactly as the
  harness did, prints what each side did and where they disagree, and exits 1 while they disagree
  (0 once fixed).
* A built-in framework column's script is framework-only (framework_repro.py): the framework and
  NumPy, the adapter's translation code inlined, torch's output stored as data: ready for an
  upstream issue.

The failure report gets two lines: the script's path and the command that reruns just that case.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from conformance.judging.tolerance import forward_bound, gradient_bounds
from conformance.judging.verdict import CaseResult, sided_bound
from conformance.reporting.framework_repro import write_framework_repro
from conformance.running.implementations import Implementation, builtin_implementations


@dataclass(frozen=True)
class Repro:
    script: Path
    data: Path
    rerun: str  # the conformance command that reruns just this case


def repro_stem(name: str) -> str:
    """A case name as a file name: 'networks/resnext 3x3' -> 'networks__resnext_3x3'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.replace("/", "__")).strip("_") or "case"


def function_location(function: Callable[..., Any]) -> dict[str, Any]:
    """How the script imports ``function``: a module name and the folder to put on sys.path, or
    a file path (a plug-in loaded from path/file.py), and the attribute path within it."""
    module_name = getattr(function, "__module__", None) or ""
    qualname = getattr(function, "__qualname__", None) or getattr(function, "__name__", "")
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if module_name.startswith("conformance_plugin_") and file:  # loaded by path: import it by path again
        return {"module": None, "file": str(Path(file).resolve()), "root": None, "attribute": qualname}
    root = None
    if file:
        path = Path(file).resolve()
        depth = module_name.count(".") + (2 if path.name == "__init__.py" else 1)
        root = str(path.parents[depth - 1])
    return {"module": module_name, "file": None, "root": root, "attribute": qualname}


def spec_location(spec: Any, op: str) -> dict[str, Any]:
    """The import location from an --impl string alone (for an implementation whose functions live in
    another process): MODULE, MODULE:FUNCTION, path/file.py[:FUNCTION]; None is the reference."""
    text = "reference_impl" if spec is None else str(spec)
    module, _, attribute = text.rpartition(":") if ":" in text else (builtin_implementations().get(text, text), "", op)
    if module.endswith(".py"):
        return {"module": None, "file": str(Path(module).resolve()), "root": None, "attribute": attribute}
    return {"module": module, "file": None, "root": str(Path.cwd()), "attribute": attribute}


def _backward_location(implementation: Implementation, case: Any, function: Any) -> dict[str, Any]:
    """Where the script imports the backward from: the function itself when it lives in this process,
    else (an implementation in a worker process hands back only a stand-in) from its recorded name."""
    if hasattr(function, "__qualname__"):
        return function_location(function)
    name = implementation.backward_name_for(case) or ""
    if ":" in name:  # MODULE:FUNCTION_backward or MODULE:FUNCTION.backward
        return spec_location(name, case.conv.functional_name + "_backward")
    return spec_location(implementation.spec, case.conv.functional_name + "_backward")


def write_repro(
    result: CaseResult, implementation: Implementation, directory: Path, rerun_options: Sequence[str] = ()
) -> Repro | None:
    """Write the script and data of a failed ``result``; notes their paths and the rerun command
    on the result. None when the case never reached the implementation (nothing to rerun)."""
    run, case = result.run, result.case
    if run is None or case is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    stem = repro_stem(case.name)
    script, data = directory / f"{stem}.py", directory / f"{stem}.npz"
    tensors = run.tensors
    arrays: dict[str, np.ndarray] = {"input": tensors.input, "weight": tensors.weight}
    if tensors.bias is not None:
        arrays["bias"] = tensors.bias
    rtol, atol = case.rtol_atol
    kwargs = case.conv.functional_kwargs()
    if case.tolerance_mode == "bound" and case.expect_error is None and run.torch.output is not None:
        try:
            bound = sided_bound(
                forward_bound(case.dtype, kwargs, tensors.input, tensors.weight, tensors.bias),
                exact_side=implementation.computes_in_float64,
            )
            if bound is not None:
                arrays["allowed_output"] = np.broadcast_to(bound.allowed(), run.torch.output.shape)
        except Exception:  # without a bound the script falls back to rtol/atol
            pass
    rerun = shlex.join(["conformance", "run", str(case.file), "-k", case.name, *rerun_options])
    builtin_module = (
        builtin_implementations().get(implementation.spec) if isinstance(implementation.spec, str) else None
    )
    if builtin_module is not None:
        environment = getattr(implementation, "environment", None)
        script, data = write_framework_repro(
            result,
            implementation.spec,
            builtin_module,
            directory,
            stem,
            dict(environment()) if callable(environment) else {},
            arrays.get("allowed_output"),
        )
        result.notes.append(f"repro: python {shlex.quote(str(script))}")
        result.notes.append(f"rerun: {rerun}")
        return Repro(script, data, rerun)
    backward_function = implementation.backward_function_for(case)
    backward = bool(case.backward and tensors.grad_output is not None and backward_function is not None)
    if backward:
        assert tensors.grad_output is not None  # (narrowing: backward needs it)
        arrays["grad_output"] = tensors.grad_output
        if case.tolerance_mode == "bound":
            try:
                bounds = gradient_bounds(
                    case.dtype, kwargs, tensors.grad_output, tensors.input, tensors.weight, tensors.bias
                )
                for name, grad_bound in bounds.items():
                    if grad_bound is not None:
                        sided = sided_bound(grad_bound, exact_side=implementation.computes_in_float64)
                        arrays[f"allowed_{name}"] = np.asarray(sided.allowed())  # type: ignore[union-attr]
            except Exception:  # noqa: BLE001
                pass
    payload: dict[str, Any] = {key: np.asarray(value) for key, value in arrays.items()}
    np.savez(data, **payload)

    function = (getattr(implementation, "functions", None) or {}).get(case.conv.functional_name)
    forward_location = relocatable(
        function_location(function)
        if function is not None
        else spec_location(implementation.spec, case.conv.functional_name),
        directory,
    )
    settings = {
        "CASE": case.name,
        "LOCATION": portable_location(case.location),
        "KIND": result.kind,
        "SUMMARY": result.message.split("; ")[0],
        "IMPLEMENTATION": implementation.name,
        "FORWARD": forward_location,
        "BACKWARD": relocatable(_backward_location(implementation, case, backward_function), directory)
        if backward
        else None,
        "OP": case.conv.functional_name,
        "CONV_TYPE": getattr(case.conv, "type", "Conv2d"),
        "KWARGS": {key: tuple(v) if isinstance(v, list) else v for key, v in kwargs.items()},
        "TORCH_KWARGS": {key: tuple(v) if isinstance(v, list) else v for key, v in case.conv.torch_kwargs().items()},
        "DTYPE": case.dtype,
        "CALL_DTYPE": implementation.call_dtype(case),
        "ARRAYS": implementation.arrays,
        "DEVICE": implementation.device,
        "REFUSAL_TYPES": list(implementation.refusal_type_names),
        "EXPECT_ERROR": case.expect_error is not None,
        "RTOL": rtol,
        "ATOL": atol,
        "TORCH_DEVICE": run.device,
    }
    script.write_text(_script(settings, data.name), encoding="utf-8")
    script.chmod(0o755)
    result.notes.append(f"repro: python {shlex.quote(str(script))}")
    result.notes.append(f"rerun: {rerun}")
    return Repro(script, data, rerun)


def relocatable(location: dict[str, Any], directory: Path) -> dict[str, Any]:
    """``location`` without absolute paths: a plug-in file is copied into ``directory`` and named
    relative to the script. A plug-in module is imported by name (the working folder on sys.path, as
    ``--impl`` does); when it is a single source file outside site-packages, a copy goes beside the
    script too, for the script to fall back on where the module is not importable."""
    moved = dict(location, root=None, copy=None)
    if location.get("file"):
        moved["file"] = _copy_beside(Path(location["file"]), directory)
        return moved
    source = _module_file(location.get("module") or "")
    if source.suffix == ".py" and source.name != "__init__.py" and "site-packages" not in source.parts:
        moved["copy"] = _copy_beside(source, directory)
    return moved


def portable_location(location: str) -> str:
    """A case's 'file:line' as the script prints it: relative to the working folder when the file is
    under it, else its name alone (a script holds no absolute path).

    >>> portable_location("/nowhere/cases/seed/groups3.yaml:3")
    'groups3.yaml:3'
    """
    path = Path(location)
    if not path.is_absolute():
        return location
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return path.name


def _module_file(name: str) -> Path:
    """Where module ``name`` is read from (found without running it when it was not imported here:
    the implementation may live in a worker process); an empty path when unknown."""
    module = sys.modules.get(name)
    if module is not None:
        return Path(getattr(module, "__file__", "") or "")
    try:
        found = importlib.util.find_spec(name) if name else None
    except (ImportError, ValueError):
        return Path()
    return Path(found.origin) if found is not None and found.origin else Path()


def _copy_beside(source: Path, directory: Path) -> str:
    target = directory / source.name
    if source.resolve() != target.resolve():
        shutil.copyfile(source, target)
    return source.name


def _script(settings: dict[str, Any], data_name: str) -> str:
    assignments = "\n".join(f"{key} = {value!r}" for key, value in settings.items())
    return (
        SCRIPT_TEMPLATE.replace("{{SETTINGS}}", assignments)
        .replace("{{DATA}}", repr(data_name))
        .replace("{{CASE}}", settings["CASE"])
        .replace("{{IMPLEMENTATION}}", settings["IMPLEMENTATION"])
    )


SCRIPT_TEMPLATE = '''#!/usr/bin/env python3
"""Reproduce conformance case {{CASE}} on {{IMPLEMENTATION}}: the implementation and torch on
the same tensors, side by side. Needs NumPy, torch and the implementation's module.
Exit status: 1 while they disagree, 0 when they agree."""
import importlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

{{SETTINGS}}

HERE = Path(__file__).resolve().parent
DATA = dict(np.load(HERE / {{DATA}}))
TORCH_DTYPE = getattr(torch, DTYPE)


def load(location):
    """The implementation's function, imported as the harness imported it."""
    if location["file"]:  # a plug-in file, copied beside this script
        spec = importlib.util.spec_from_file_location("plugin_under_test", HERE / location["file"])
        owner = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(owner)
    else:
        if str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))  # a plug-in module in the working folder, as --impl finds it
        try:
            owner = importlib.import_module(location["module"])
        except ImportError:
            if not location.get("copy"):
                raise
            spec = importlib.util.spec_from_file_location("plugin_under_test", HERE / location["copy"])
            owner = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(owner)  # the copy of the plug-in module written beside this script
    for part in location["attribute"].split("."):
        owner = getattr(owner, part)
    return owner


def numpy_dtype(name):
    if name == "bfloat16":
        import ml_dtypes  # the NumPy bfloat16 the harness hands to NumPy plug-ins

        return ml_dtypes.bfloat16
    return np.dtype(name)


def to_plugin(array):
    """A stored array (bfloat16 values held as float32) as the implementation takes it."""
    if array is None:
        return None
    if ARRAYS == "torch":
        return torch.from_numpy(np.ascontiguousarray(array)).to(device=DEVICE, dtype=getattr(torch, CALL_DTYPE))
    as_numpy = np.ascontiguousarray(array).astype(numpy_dtype(CALL_DTYPE))
    if ARRAYS == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        return jax.device_put(as_numpy)
    return as_numpy


def from_plugin(value):
    """(host float64 array, dtype name) of whatever the implementation returned."""
    if isinstance(value, torch.Tensor):
        value = value.detach()
        name = str(value.dtype).replace("torch.", "")
        return value.cpu().to(torch.float64).numpy(), name
    array = np.asarray(value)
    return array.astype(np.float64), array.dtype.name


def torch_tensor(array):
    return None if array is None else torch.from_numpy(np.ascontiguousarray(array)).to(TORCH_DEVICE, TORCH_DTYPE)


def torch_module(weight, bias, requires_grad=False):
    """torch.nn.<Conv> holding exactly the case's parameters, in the case's dtype."""
    module = getattr(torch.nn, CONV_TYPE)(**TORCH_KWARGS, dtype=TORCH_DTYPE, device=TORCH_DEVICE)
    module.weight = torch.nn.Parameter(torch_tensor(weight), requires_grad=requires_grad)
    if bias is not None:
        module.bias = torch.nn.Parameter(torch_tensor(bias), requires_grad=requires_grad)
    return module


def attempt(function):
    try:
        return function(), None
    except Exception as error:  # the verdict, not a problem of this script
        return None, error


def judge(error):
    """How the harness judges an exception: refused, unsupported or crashed."""
    refusals = (ValueError, RuntimeError) + tuple(load({"file": None, "root": None, "module": name.rpartition(".")[0],
                                                         "attribute": name.rpartition(".")[2]})
                                                   for name in REFUSAL_TYPES)
    if isinstance(error, NotImplementedError):
        return "unsupported"
    return "refused" if isinstance(error, refusals) else "crashed"


def describe(error):
    return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"


def compare(label, mine, theirs, allowed):
    """Print the worst element and how many exceed the allowance; True when they agree."""
    if mine.shape != theirs.shape:
        print(f"{label}: shapes differ: {IMPLEMENTATION} {mine.shape}, torch {theirs.shape}")
        return False
    if allowed is None:
        allowed = ATOL + RTOL * np.abs(theirs)
    with np.errstate(invalid="ignore"):
        error = np.where(np.isnan(mine) & np.isnan(theirs), 0.0, np.abs(mine - theirs))
        error = np.where(np.isnan(error), np.inf, error)
    bad = error > allowed
    if error.size == 0:
        print(f"{label}: empty, nothing to compare")
        return True
    worst = np.unravel_index(int(np.argmax(np.where(bad, error - allowed, -np.inf) if bad.any() else error)),
                             error.shape)
    print(f"{label}: {int(bad.sum())} of {error.size} elements differ beyond the allowance; worst at "
          f"{tuple(int(i) for i in worst)}: {IMPLEMENTATION} {mine[worst]:.9g}, torch {theirs[worst]:.9g}, "
          f"abs error {error[worst]:.3g}, allowed {np.broadcast_to(allowed, error.shape)[worst]:.3g}")
    return not bad.any()


def main():
    print(f"case {CASE} ({LOCATION}); the harness said: [{KIND}] {SUMMARY}")
    print(f"{IMPLEMENTATION} gets {ARRAYS} arrays in {CALL_DTYPE} on {DEVICE}; torch {torch.__version__} "
          f"computes torch.nn.{CONV_TYPE} in {DTYPE} on {TORCH_DEVICE}")
    x, weight, bias = DATA["input"], DATA["weight"], DATA.get("bias")
    forward = load(FORWARD)
    mine, my_error = attempt(lambda: from_plugin(forward(to_plugin(x), to_plugin(weight), to_plugin(bias), **KWARGS)))
    with torch.no_grad():
        theirs, torch_error = attempt(
            lambda: torch_module(weight, bias)(torch_tensor(x)).to(torch.float64).cpu().numpy()
        )
    print(f"{IMPLEMENTATION}: " + (f"raised {describe(my_error)} ({judge(my_error)})" if my_error
                                   else f"output of shape {mine[0].shape}, dtype {mine[1]}"))
    print("torch: " + (f"raised {describe(torch_error)}" if torch_error else f"output of shape {theirs.shape}"))
    if torch_error is not None or my_error is not None:
        agree = torch_error is not None and my_error is not None and judge(my_error) == "refused"
        print("AGREE: both refuse the layer" if agree else
              "DISAGREE: " + ("torch refuses the layer, the implementation computes it" if my_error is None else
                              "torch computes the layer, the implementation raises" if torch_error is None else
                              f"torch refuses the layer, the implementation {judge(my_error)}"))
        return 0 if agree else 1
    agree = compare("output", mine[0], theirs, DATA.get("allowed_output"))
    if mine[1] != CALL_DTYPE:
        print(f"dtype: {IMPLEMENTATION} returned {mine[1]}, expected {CALL_DTYPE}")
        agree = False
    if BACKWARD is not None:
        grad_output = DATA["grad_output"]
        backward = load(BACKWARD)
        grads, error = attempt(lambda: backward(*(to_plugin(a) for a in (grad_output, x, weight, bias)), **KWARGS))
        if error is not None:
            print(f"backward: {IMPLEMENTATION} raised {describe(error)}")
            return 1
        module = torch_module(weight, bias, requires_grad=True)
        x_tensor = torch_tensor(x).requires_grad_(True)
        module(x_tensor).backward(torch_tensor(grad_output))
        expected = {"grad_input": x_tensor.grad, "grad_weight": module.weight.grad,
                    "grad_bias": None if bias is None else module.bias.grad}
        for (name, theirs_grad), mine_grad in zip(expected.items(), grads):
            if theirs_grad is None:
                continue
            agree &= compare(name, from_plugin(mine_grad)[0], theirs_grad.to(torch.float64).cpu().numpy(),
                             DATA.get(f"allowed_{name}"))
    print("AGREE: the failure did not reproduce" if agree else "DISAGREE")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
'''
