"""Time every algorithm of the reference conv2d, torch and ONNX's reference evaluator on real layers.

    python -m benchmarks.network_layers                 # timing table + roofline
    python -m benchmarks.network_layers --memory        # + peak memory, one process per measurement
    python -m benchmarks.network_layers --onnx-path DIR # where `onnx` is installed, if not importable
    python -m benchmarks.network_layers --jit-only      # only the numba compile / cache-load times
    python -m benchmarks.network_layers --sweep         # + synthetic 3x3 layers, C_g = 4..64 (the chooser's threshold)
    python -m benchmarks.network_layers --threads 1     # torch, numba and BLAS all on one thread
    python -m benchmarks.network_layers --before DIR    # + an older reference_impl (DIR/reference_impl), same run
    python -m benchmarks.network_layers --tables nd     # only the other ops' layers (conv2d, nd or all)

All in one run, so the ratios compare like with like on a noisy machine: every implementation
is timed in blocks after warm-up (see median_times for why not round-robin); we report the
median. torch runs with set_num_threads(THREADS) under no_grad, numba (the "compiled" path)
with set_num_threads(THREADS) too; NumPy's BLAS uses its own threads (OpenBLAS: one per core).
Each table has two reference columns: "chosen" (choose_algorithm as installed: with numba when
it imports) and "numpy" (choose_algorithm(use_compiled=False): what runs without numba). A
transposed layer has one: the reference's default, the path of the input-gradient it is ("phases":
one stride-1 convolution per output phase; "scatter": one GEMM then a strided add per tap; see
reference_impl/backward.py). ``--before`` adds the conv2d of another checkout of
reference_impl (e.g. ``git archive <commit> reference_impl | tar -x -C DIR``), timed in the same
run, for before/after ratios that share the machine's state. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from benchmarks import pin_blas_threads, threads_from_argv  # noqa: E402

THREADS = threads_from_argv(default=2)
if __name__ == "__main__":
    pin_blas_threads(THREADS)

import numpy as np  # noqa: E402

import reference_impl  # noqa: E402
from benchmarks.layers import LAYERS, ND_LAYERS, Layer  # noqa: E402
from reference_impl import conv2d  # noqa: E402
from reference_impl.algorithms import ALGORITHMS, choose_algorithm, numba_available  # noqa: E402
from reference_impl.geometry import plan_conv  # noqa: E402

TRANSPOSED_PATHS = ("phases", "scatter")  # a transposed layer's reference path (reference_impl/backward.py)
REPO = Path(__file__).resolve().parents[1]


def median_times(
    fns: dict[str, Callable[[], object]], rounds: int, warmup: int = 2, warmup_seconds: float = 0.3
) -> dict[str, dict[str, float]]:
    """Median and minimum seconds per call of each function, timed in blocks: all rounds of one,
    then the next.

    Not round-robin: with 2 cores, OpenBLAS's and torch's (libgomp) worker threads keep spinning
    for a while after a call and steal the cores of whatever runs next (measured: torch 10x slower
    right after a NumPy GEMM). So each block starts after a pause and a warm-up. Drift is evened
    out by running the blocks twice, in forward then reverse order, and pooling the samples.
    Warm-up is at least ``warmup`` calls and ``warmup_seconds``: torch's first few dozen calls
    of a new shape were measured up to 50x slower than its steady state on this machine.

    Why the minimum too: on this 2-vCPU VM, torch's libgomp threads spin at barriers, and when
    the host preempts a vCPU a call takes ~25-30 ms instead of ~0.5 ms, in episodes lasting
    dozens of calls (measured with torch alone; OMP_WAIT_POLICY=PASSIVE removes the episodes but
    makes torch ~1.8x slower). The median of a block that hit an episode is meaningless, the
    minimum is the least disturbed call. Report both; judge on both.
    """
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for order in (list(fns), list(fns)[::-1]):
        for name in order:
            time.sleep(0.2)  # let the previous block's spinning threads go to sleep
            start, calls = time.perf_counter(), 0
            while calls < warmup or time.perf_counter() - start < warmup_seconds:
                fns[name]()
                calls += 1
            for _ in range(max(1, rounds // 2)):
                start = time.perf_counter()
                fns[name]()
                samples[name].append(time.perf_counter() - start)
    return {name: {"median": float(np.median(s)), "min": float(np.min(s))} for name, s in samples.items()}


def set_threads() -> None:
    """torch and numba both on THREADS threads (NumPy's ufuncs are single-threaded regardless)."""
    import torch

    torch.set_num_threads(THREADS)
    if numba_available():
        import numba

        numba.set_num_threads(THREADS)


def algorithms_for(layer: Layer) -> list[str]:
    """The algorithms a layer can be forced to (none for a transposed layer: it has one path)."""
    if layer.transposed:
        return []
    one_by_one = all(k == 1 for k in layer.weight_shape[2:])
    return [a for a in ALGORITHMS if (a != "pointwise" or one_by_one) and (a != "compiled" or numba_available())]


def chosen(layer: Layer, use_compiled: bool | None = None) -> str:
    if layer.transposed:  # the path of the convolution's input-gradient it is
        from reference_impl.backward import choose_input_gradient_path

        geometry = reference_impl.plan_conv_transpose(
            layer.input_shape, layer.weight_shape, None, **layer.conv_kwargs(), spatial_dims=layer.spatial_dims
        ).conv
        return choose_input_gradient_path(geometry, np.dtype(np.float32))
    geometry = plan_conv(
        layer.input_shape, layer.weight_shape, None, **layer.conv_kwargs(), spatial_dims=layer.spatial_dims
    )
    return choose_algorithm(geometry, use_compiled)


def load_before(directory: str) -> ModuleType:
    """An older checkout's reference_impl (DIR/reference_impl), imported as ``reference_before``."""
    import importlib.util

    init = Path(directory) / "reference_impl" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "reference_before", init, submodule_search_locations=[str(init.parent)]
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["reference_before"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def import_onnx(extra_path: str | None):
    """ONNX's NumPy reference evaluator, or None: it is an optional comparison, never required."""
    for attempt in (None, extra_path):
        if attempt:
            sys.path.append(attempt)  # appended: the project's own numpy stays first
        try:
            from onnx import TensorProto, helper
            from onnx.reference import ReferenceEvaluator

            return TensorProto, helper, ReferenceEvaluator
        except ImportError:
            continue
    return None


def onnx_conv(onnx_mod, layer: Layer, w: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A one-node Conv model with the weight as an initializer, run by ReferenceEvaluator."""
    TensorProto, helper, ReferenceEvaluator = onnx_mod
    p = layer.padding
    node = helper.make_node(
        "Conv",
        ["X", "W"],
        ["Y"],
        group=layer.groups,
        pads=[p, p, p, p],
        strides=[layer.stride] * 2,
        kernel_shape=[layer.kernel] * 2,
    )
    graph = helper.make_graph(
        [node],
        "conv",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=[helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.ravel().tolist())],
    )
    session = ReferenceEvaluator(helper.make_model(graph))
    return lambda x: session.run(None, {"X": x})[0]


def time_layers(rounds: int, onnx_mod, layers: list[Layer] = LAYERS, before: ModuleType | None = None) -> list[dict]:
    import torch

    set_threads()
    rows = []
    for layer in layers:
        x, w = layer.tensors()
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        kw = layer.conv_kwargs()
        torch_op, reference_op = getattr(torch.nn.functional, layer.op), getattr(reference_impl, layer.op)

        # Defaults bind this layer's tensors: the functions are timed within this iteration only.
        def run_torch(torch_op=torch_op, tx=tx, tw=tw, kw=kw):
            with torch.no_grad():
                return torch_op(tx, tw, None, **kw)

        expected = run_torch().numpy()
        tolerance = dict(rtol=1e-3, atol=1e-3 * max(1.0, float(np.abs(expected).max())))

        def checked(
            function: Callable[[], np.ndarray], label: str, expected=expected, tolerance=tolerance
        ) -> Callable[[], np.ndarray]:
            got = function()
            assert got.dtype == np.float32 and np.allclose(got, expected, **tolerance), label
            return function

        fns: dict[str, Callable[[], object]] = {"torch": run_torch}
        if layer.transposed:
            fns[chosen(layer)] = checked(partial(reference_op, x, w, None, **kw), layer.op)
        for name in algorithms_for(layer):
            fns[name] = checked(partial(reference_op, x, w, None, **kw, algorithm=name), name)
        if before is not None and layer.op == "conv2d":
            fns["before"] = checked(partial(before.conv2d, x, w, None, **kw), "before")
        times = median_times(fns, rounds)
        if onnx_mod is not None and layer.op == "conv2d":  # slow: fewer rounds, timed separately
            run_onnx = onnx_conv(onnx_mod, layer, w)
            assert np.allclose(run_onnx(x), expected, rtol=1e-3, atol=1e-3)
            times.update(median_times({"onnx": partial(run_onnx, x)}, max(3, rounds // 3), warmup=1))
        rows.append(
            {
                "layer": layer.name,
                "op": layer.op,
                "chosen": chosen(layer),
                "numpy_chosen": chosen(layer, use_compiled=False),
                "gflop": layer.flops / 1e9,
                "seconds": times,
            }
        )
        print(f"  timed {layer.name}", file=sys.stderr)
    return rows


# Synthetic 3x3 layers, 256 channels at 28x28, batch 2: only the channels per group change, to
# place the chooser's COMPILED_MAX_CHANNELS_PER_GROUP between the direct loop and the GEMM paths.
SWEEP = [Layer(f"sweep 3x3 C_g={c_g}", 256, 256, 256 // c_g, 3, 1, 1, 28) for c_g in (4, 8, 16, 32, 64)]


def time_sweep(rounds: int) -> list[dict]:
    import torch

    set_threads()
    rows = []
    for layer in SWEEP:
        x, w = layer.tensors()
        tx, tw, kw = torch.from_numpy(x), torch.from_numpy(w), layer.conv_kwargs()
        fns: dict[str, Callable[[], object]] = {"torch": partial(torch.nn.functional.conv2d, tx, tw, None, **kw)}
        for name in ("taps", "einsum", "compiled"):
            if name != "compiled" or numba_available():
                conv2d(x, w, **kw, algorithm=name)  # compile outside the timing
                fns[name] = partial(conv2d, x, w, **kw, algorithm=name)
        with torch.no_grad():
            rows.append(
                {
                    "layer": layer.name,
                    "chosen": chosen(layer),
                    "numpy_chosen": chosen(layer, use_compiled=False),
                    "seconds": median_times(fns, rounds),
                }
            )
        print(f"  timed {layer.name}", file=sys.stderr)
    return rows


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def print_table(rows: list[dict], stat: str, summary: bool = True) -> None:
    """One table of times (ms) and ratios to torch, all from the same statistic (median or min)."""
    algos = [a for a in [*ALGORITHMS, *TRANSPOSED_PATHS] if any(a in row["seconds"] for row in rows)]
    has_onnx = all("onnx" in row["seconds"] for row in rows)
    has_before = all("before" in row["seconds"] for row in rows)
    print(f"\n{stat} of the rounds: ms (ratio to torch)")
    header = f"{'layer':30s} {'torch ms':>9s} " + " ".join(f"{a:>16s}" for a in algos)
    header += f" {'chosen':>9s} {'ref/torch':>9s} {'numpy':>9s} {'np/torch':>9s}"
    header += f" {'onnx ms':>9s} {'onnx/ref':>9s}" if has_onnx else ""
    header += f" {'before ms':>9s} {'bef/torch':>9s}" if has_before else ""
    print(header)
    ratios: dict[str, list[float]] = {a: [] for a in algos + ["chosen", "numpy", "onnx", "before"]}
    for row in rows:
        s = {name: v[stat] for name, v in row["seconds"].items()}
        t = s["torch"]
        cells = []
        for a in algos:
            if a in s:
                ratios[a].append(s[a] / t)
                cells.append(f"{s[a] * 1e3:7.2f} ({s[a] / t:5.2f})")
            else:
                cells.append(f"{'-':>16s}")
        ref, numpy_only = s[row["chosen"]], s[row["numpy_chosen"]]
        ratios["chosen"].append(ref / t)
        ratios["numpy"].append(numpy_only / t)
        line = f"{row['layer']:30s} {t * 1e3:9.3f} " + " ".join(cells) + f" {row['chosen']:>9s} {ref / t:9.2f}"
        line += f" {row['numpy_chosen']:>9s} {numpy_only / t:9.2f}"
        if has_onnx:
            ratios["onnx"].append(s["onnx"] / ref)
            line += f" {s['onnx'] * 1e3:9.2f} {s['onnx'] / ref:9.1f}"
        if has_before:
            ratios["before"].append(s["before"] / t)
            line += f" {s['before'] * 1e3:9.2f} {s['before'] / t:9.2f}"
        print(line)
    if not summary:
        return
    print(
        "geometric mean of ratios to torch: "
        + ", ".join(f"{k} {geomean(v):.2f} (over {len(v)})" for k, v in ratios.items() if v and k != "onnx")
    )
    print(
        "max ratio to torch: "
        + ", ".join(f"{k} {max(ratios[k]):.2f}" for k in ("chosen", "numpy", "before") if ratios[k])
    )
    if has_onnx:
        print(f"geometric mean onnx/reference (speed-up of the reference over ONNX): {geomean(ratios['onnx']):.1f}")


def roofline() -> dict:
    """float32 GEMM peak of numpy's BLAS and the large-copy memory bandwidth, for context."""
    n = 2048
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    gemm = median_times({"gemm": lambda: a @ a}, rounds=8)["gemm"]["min"]
    src = np.ones(64 * 2**20, dtype=np.float32)  # 256 MiB, far past every cache
    dst = np.empty_like(src)
    copy = median_times({"copy": lambda: np.copyto(dst, src)}, rounds=8, warmup=1)["copy"]["min"]
    return {"gemm_gflops": 2 * n**3 / gemm / 1e9, "copy_gbps": 2 * src.nbytes / copy / 1e9}


def _status_kib(field: str) -> int:
    """A 'VmRSS' / 'VmHWM' line of /proc/self/status, in KiB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def memory_child(impl: str, index: int) -> None:
    """Run one convolution in this fresh process; print its peak RSS growth (KiB) as JSON.

    ru_maxrss is no good here: Linux carries it over from the parent through fork + exec, so a
    child of this (large) benchmark process starts with the parent's peak. Instead reset the
    process's RSS high-water mark (writing 5 to /proc/self/clear_refs) once the inputs exist
    and one warm call is done, and read VmHWM after a second call: the peak of one steady-state
    call, input excluded, output included.
    """
    layer = LAYERS[index]
    x, w = layer.tensors()
    set_threads()
    if impl == "torch":
        import torch

        torch.set_grad_enabled(False)
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        run = lambda: getattr(torch.nn.functional, layer.op)(tx, tw, None, **layer.conv_kwargs())  # noqa: E731
    else:

        def run():
            return getattr(reference_impl, layer.op)(
                x,
                w,
                **layer.conv_kwargs(),
                algorithm=None if impl == "reference" else impl,
            )

    run()  # warm call: torch's one-time set-up (oneDNN kernels, caches) is not a per-call cost
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    rss_before = _status_kib("VmRSS")
    out = run()
    print(json.dumps({"peak_kib": _status_kib("VmHWM") - rss_before, "output_kib": np.asarray(out).nbytes // 1024}))


def measure_memory(indices: list[int]) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    rows = []
    for index in indices:
        layer = LAYERS[index]
        row = {"layer": layer.name, "input_kib": math.prod(layer.input_shape) * 4 // 1024}
        for impl in ["torch", "reference", *algorithms_for(layer)]:
            result = subprocess.run(
                [sys.executable, "-m", "benchmarks.network_layers", "--memory-child", impl, str(index)],
                env=env,
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            )
            row[impl] = json.loads(result.stdout.strip().splitlines()[-1])["peak_kib"]
        rows.append(row)
        print(f"  memory {layer.name}", file=sys.stderr)
    return rows


def print_memory(rows: list[dict]) -> None:
    print("\npeak RSS growth during one call (MiB; input already allocated)")
    for row in rows:
        extra = ", ".join(
            f"{k} {v / 1024:.1f}" for k, v in row.items() if k not in ("layer", "input_kib", "torch", "reference")
        )
        print(
            f"{row['layer']:30s} input {row['input_kib'] / 1024:5.1f}  torch {row['torch'] / 1024:6.1f}  "
            f"reference {row['reference'] / 1024:6.1f} ({row['reference'] / max(row['torch'], 1):.2f}x)   [{extra}]"
        )


# Run in a fresh `python -c` (not -m this module, which imports reference_impl before it could be timed).
JIT_CHILD = """
import json, time
start = time.perf_counter()
import numpy as np
from reference_impl import conv2d   # numba's own import is part of this cost
result = {"import_s": time.perf_counter() - start}
x = np.random.default_rng(0).standard_normal((2, 8, 16, 16))
w = np.random.default_rng(1).standard_normal((8, 1, 3, 3))
for dtype in (np.float32, np.float64):
    for call in ("first", "second"):
        start = time.perf_counter()
        conv2d(x.astype(dtype), w.astype(dtype), padding=1, groups=8, algorithm="compiled")
        result[f"{dtype.__name__}_{call}_s"] = time.perf_counter() - start
print(json.dumps(result))
"""


def measure_jit() -> dict:
    """The compiled path's one-time costs, each in a fresh process (JIT_CHILD: the import, then
    the first and a second "compiled" call per dtype): with an empty numba cache
    (NUMBA_CACHE_DIR pointed at a new directory: a full compile), then again with that cache
    filled (what every later process pays)."""
    results = {}
    with tempfile.TemporaryDirectory() as cache_dir:
        env = dict(
            os.environ,
            NUMBA_CACHE_DIR=cache_dir,
            PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        )
        for label in ("empty_cache", "cached"):
            out = subprocess.run(
                [sys.executable, "-c", JIT_CHILD], env=env, cwd=REPO, capture_output=True, text=True, check=True
            )
            results[label] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


def print_jit(jit: dict) -> None:
    print("\nnumba one-time costs (s), fresh process each: import of reference_impl; first and second call per dtype")
    for label, r in jit.items():
        print(
            f"  {label:12s} import {r['import_s']:.2f}  float32 first {r['float32_first_s']:.2f} "
            f"second {r['float32_second_s']:.4f}  float64 first {r['float64_first_s']:.2f} "
            f"second {r['float64_second_s']:.4f}"
        )


def numba_environment() -> dict:
    if not numba_available():
        return {"numba": None}
    import llvmlite
    import numba

    set_threads()
    # The threading layer is only known once a parallel kernel has run.
    conv2d(np.ones((1, 1, 3, 3), np.float32), np.ones((1, 1, 3, 3), np.float32), algorithm="compiled")
    return {
        "numba": numba.__version__,
        "llvmlite": llvmlite.__version__,
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": numba.threading_layer(),
    }


def environment() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": THREADS,
        **numba_environment(),
        "loadavg_1min": os.getloadavg()[0],
    }  # other processes on the cores make every number noisier


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--memory", action="store_true", help="also measure peak memory (subprocesses)")
    parser.add_argument("--onnx-path", default=os.environ.get("ONNX_PATH"), help="directory holding the onnx package")
    parser.add_argument("--json", help="write all results here")
    parser.add_argument("--sweep", action="store_true", help="also time synthetic 3x3 layers over channels per group")
    parser.add_argument("--jit-only", action="store_true", help="only measure numba's compile and cache-load times")
    parser.add_argument(
        "--threads", type=int, default=THREADS, help="threads for torch, numba and OpenBLAS (default 2)"
    )
    parser.add_argument("--before", metavar="DIR", help="also time DIR/reference_impl's conv2d (an older checkout)")
    parser.add_argument(
        "--tables",
        choices=("conv2d", "nd", "all"),
        default="all",
        help="conv2d: the Conv2d layers; nd: the other ops' layers",
    )
    parser.add_argument("--memory-child", nargs=2, metavar=("IMPL", "LAYER_INDEX"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        return memory_child(args.memory_child[0], int(args.memory_child[1]))
    if args.jit_only:
        return print_jit(measure_jit())

    results: dict = {"environment": {**environment(), "before": args.before}}
    print(json.dumps(results["environment"]))
    onnx_mod = import_onnx(args.onnx_path)
    if onnx_mod is None:
        print("onnx not importable: skipping ONNX's reference evaluator (see --onnx-path)")
    results["roofline"] = roofline()
    print(
        "roofline: numpy float32 GEMM 2048^3 {gemm_gflops:.0f} GFLOP/s, large copy {copy_gbps:.1f} GB/s".format(
            **results["roofline"]
        )
    )
    before = load_before(args.before) if args.before else None
    if args.tables in ("conv2d", "all"):
        results["layers"] = time_layers(args.rounds, onnx_mod, LAYERS, before)
        print_table(results["layers"], "median")
        print_table(results["layers"], "min")
    if args.tables in ("nd", "all"):
        results["nd_layers"] = time_layers(args.rounds, None, ND_LAYERS)
        print("\nthe other ops' layers (conv1d, conv3d, conv_transpose2d)")
        print_table(results["nd_layers"], "median")
        print_table(results["nd_layers"], "min")
    if args.sweep:
        results["sweep"] = time_sweep(args.rounds)
        print("\nchannels-per-group sweep (not in the geometric means above)")
        print_table(results["sweep"], "median", summary=False)
        print_table(results["sweep"], "min", summary=False)
    if numba_available():  # after the timings: the compiles would disturb them
        results["jit"] = measure_jit()
        print_jit(results["jit"])
    if args.memory:
        results["memory"] = measure_memory(list(range(len(LAYERS))))
        print_memory(results["memory"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
