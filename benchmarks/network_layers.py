"""Time every algorithm of the reference conv2d, torch and ONNX's reference evaluator on real layers.

    python -m benchmarks.network_layers                 # timing table + roofline
    python -m benchmarks.network_layers --memory        # + peak memory, one process per measurement
    python -m benchmarks.network_layers --onnx-path DIR # where `onnx` is installed, if not importable

All in one run, so the ratios compare like with like on a noisy machine: every implementation
is timed in blocks after warm-up (see median_times for why not round-robin); we report the
median. torch runs with set_num_threads(THREADS) under no_grad; NumPy's BLAS uses its own
threads (OpenBLAS: one per core). Nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.layers import LAYERS, Layer
from reference_impl import conv2d
from reference_impl.algorithms import ALGORITHMS, choose_algorithm
from reference_impl.geometry import plan_conv2d

THREADS = 2
REPO = Path(__file__).resolve().parents[1]


def median_times(fns: dict[str, Callable[[], object]], rounds: int, warmup: int = 2,
                 warmup_seconds: float = 0.3) -> dict[str, dict[str, float]]:
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


def algorithms_for(layer: Layer) -> list[str]:
    return [a for a in ALGORITHMS if a != "pointwise" or layer.kernel == 1]


def chosen(layer: Layer) -> str:
    x_shape = (layer.batch, layer.in_channels, layer.size, layer.size)
    w_shape = (layer.out_channels, layer.in_channels // layer.groups, layer.kernel, layer.kernel)
    return choose_algorithm(plan_conv2d(x_shape, w_shape, None, **layer.conv_kwargs()))


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
    node = helper.make_node("Conv", ["X", "W"], ["Y"], group=layer.groups, pads=[p, p, p, p],
                            strides=[layer.stride] * 2, kernel_shape=[layer.kernel] * 2)
    graph = helper.make_graph(
        [node], "conv",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=[helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.ravel().tolist())],
    )
    session = ReferenceEvaluator(helper.make_model(graph))
    return lambda x: session.run(None, {"X": x})[0]


def time_layers(rounds: int, onnx_mod) -> list[dict]:
    import torch
    torch.set_num_threads(THREADS)
    rows = []
    for layer in LAYERS:
        x, w = layer.tensors()
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        kw = layer.conv_kwargs()

        def run_torch():
            with torch.no_grad():
                return torch.nn.functional.conv2d(tx, tw, None, **kw)

        expected = run_torch().numpy()
        fns: dict[str, Callable[[], object]] = {"torch": run_torch}
        for name in algorithms_for(layer):
            got = conv2d(x, w, **kw, algorithm=name)
            assert got.dtype == np.float32 and np.allclose(got, expected, rtol=1e-3, atol=1e-3), name
            fns[name] = lambda name=name: conv2d(x, w, **kw, algorithm=name)
        times = median_times(fns, rounds)
        if onnx_mod is not None:  # slow: fewer rounds, timed separately
            run_onnx = onnx_conv(onnx_mod, layer, w)
            assert np.allclose(run_onnx(x), expected, rtol=1e-3, atol=1e-3)
            times.update(median_times({"onnx": lambda: run_onnx(x)}, max(3, rounds // 3), warmup=1))
        rows.append({"layer": layer.name, "chosen": chosen(layer), "gflop": layer.flops / 1e9, "seconds": times})
        print(f"  timed {layer.name}", file=sys.stderr)
    return rows


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def print_table(rows: list[dict], stat: str) -> None:
    """One table of times (ms) and ratios to torch, all from the same statistic (median or min)."""
    algos = list(ALGORITHMS)
    has_onnx = "onnx" in rows[0]["seconds"]
    print(f"\n{stat} of the rounds: ms (ratio to torch)")
    header = f"{'layer':30s} {'torch ms':>9s} " + " ".join(f"{a:>16s}" for a in algos)
    header += f" {'chosen':>9s} {'ref/torch':>9s}" + (f" {'onnx ms':>9s} {'onnx/ref':>9s}" if has_onnx else "")
    print(header)
    ratios: dict[str, list[float]] = {a: [] for a in algos + ["chosen", "onnx"]}
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
        ref = s[row["chosen"]]
        ratios["chosen"].append(ref / t)
        line = f"{row['layer']:30s} {t * 1e3:9.3f} " + " ".join(cells) + f" {row['chosen']:>9s} {ref / t:9.2f}"
        if has_onnx:
            ratios["onnx"].append(s["onnx"] / ref)
            line += f" {s['onnx'] * 1e3:9.2f} {s['onnx'] / ref:9.1f}"
        print(line)
    print("geometric mean of ratios to torch: " + ", ".join(
        f"{k} {geomean(v):.2f} (over {len(v)})" for k, v in ratios.items() if v and k != "onnx"))
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
    if impl == "torch":
        import torch
        torch.set_num_threads(THREADS)
        torch.set_grad_enabled(False)
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        run = lambda: torch.nn.functional.conv2d(tx, tw, None, **layer.conv_kwargs())  # noqa: E731
    else:
        run = lambda: conv2d(x, w, **layer.conv_kwargs(), algorithm=None if impl == "reference" else impl)  # noqa: E731
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
        row = {"layer": layer.name, "input_kib": layer.batch * layer.in_channels * layer.size**2 * 4 // 1024}
        for impl in ["torch", "reference", *algorithms_for(layer)]:
            result = subprocess.run([sys.executable, "-m", "benchmarks.network_layers", "--memory-child", impl, str(index)],
                                    env=env, cwd=REPO, capture_output=True, text=True, check=True)
            row[impl] = json.loads(result.stdout.strip().splitlines()[-1])["peak_kib"]
        rows.append(row)
        print(f"  memory {layer.name}", file=sys.stderr)
    return rows


def print_memory(rows: list[dict]) -> None:
    print("\npeak RSS growth during one call (MiB; input already allocated)")
    for row in rows:
        extra = ", ".join(f"{k} {v / 1024:.1f}" for k, v in row.items() if k not in ("layer", "input_kib", "torch", "reference"))
        print(f"{row['layer']:30s} input {row['input_kib'] / 1024:5.1f}  torch {row['torch'] / 1024:6.1f}  "
              f"reference {row['reference'] / 1024:6.1f} ({row['reference'] / max(row['torch'], 1):.2f}x)   [{extra}]")


def environment() -> dict:
    import torch
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "torch": torch.__version__, "torch_threads": THREADS,
            "loadavg_1min": os.getloadavg()[0]}  # other processes on the cores make every number noisier


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--memory", action="store_true", help="also measure peak memory (subprocesses)")
    parser.add_argument("--onnx-path", default=os.environ.get("ONNX_PATH"), help="directory holding the onnx package")
    parser.add_argument("--json", help="write all results here")
    parser.add_argument("--memory-child", nargs=2, metavar=("IMPL", "LAYER_INDEX"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        return memory_child(args.memory_child[0], int(args.memory_child[1]))

    results: dict = {"environment": environment()}
    print(json.dumps(results["environment"]))
    onnx_mod = import_onnx(args.onnx_path)
    if onnx_mod is None:
        print("onnx not importable: skipping ONNX's reference evaluator (see --onnx-path)")
    results["roofline"] = roofline()
    print("roofline: numpy float32 GEMM 2048^3 {gemm_gflops:.0f} GFLOP/s, large copy {copy_gbps:.1f} GB/s".format(**results["roofline"]))
    results["layers"] = time_layers(args.rounds, onnx_mod)
    print_table(results["layers"], "median")
    print_table(results["layers"], "min")
    if args.memory:
        results["memory"] = measure_memory(list(range(len(LAYERS))))
        print_memory(results["memory"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
