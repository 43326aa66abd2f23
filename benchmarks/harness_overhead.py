"""How much time the harness itself costs per case: ``conformance run`` over many tiny cases.

The target (issue 4): load, validate, compare and report in under 2 ms per small case, i.e.
``conformance run`` over 1,000 tiny cases in under 10 s, wall clock, interpreter start included.
The convolutions are a few dozen multiply-adds, so almost all of the time is the harness's.

    .venv/bin/python benchmarks/harness_overhead.py            # 1,000 cases, 3 runs, best and median
    .venv/bin/python benchmarks/harness_overhead.py --count 200 --profile   # + where the time goes (cProfile)

No test asserts a time: the numbers depend on the machine. ``tests/test_harness_overhead.py``
only checks that the generated cases are valid and pass, so this script keeps working.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# A few tiny layers, so the run goes through grouped, depthwise, strided, padded and bias paths;
# each file gets its own name, hence its own derived random tensors.
TINY_LAYERS = (
    "{in_channels: 4, out_channels: 4, kernel_size: 1, groups: 2}",
    "{in_channels: 4, out_channels: 8, kernel_size: 3, padding: 1, groups: 4}",
    "{in_channels: 6, out_channels: 6, kernel_size: [2, 3], stride: [2, 1], groups: 3, bias: false}",
    "{in_channels: 2, out_channels: 4, kernel_size: 3, dilation: 2, padding: 2, padding_mode: reflect}",
)
TINY_CASE = """\
name: tiny/{index:04d}
conv: {layer}
input: {{random: {{}}, shape: [1, {in_channels}, 5, 5]}}
"""


def write_tiny_cases(folder: Path, count: int) -> list[Path]:
    """Write ``count`` tiny, valid case files under ``folder``; returns their paths.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     len(write_tiny_cases(Path(tmp), 5))
    5
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        layer = TINY_LAYERS[index % len(TINY_LAYERS)]
        in_channels = int(layer.split("in_channels:")[1].split(",")[0])
        path = folder / f"tiny_{index:04d}.yaml"
        path.write_text(TINY_CASE.format(index=index, layer=layer, in_channels=in_channels), encoding="utf-8")
        paths.append(path)
    return paths


def time_run(folder: Path, extra_args: list[str] | None = None) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall-clock and CPU (user + system) seconds of ``python -m conformance run FOLDER -q`` in a
    fresh interpreter. On a busy machine the CPU time is the steadier measure of the work done."""
    command = [sys.executable, "-m", "conformance", "run", str(folder), "-q", *(extra_args or [])]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, completed


def time_interpreter_start() -> float:
    """Seconds to start Python and import the harness with torch, the fixed cost of any run."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import conformance.commands.run"], check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="number of tiny case files (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (default 3)")
    parser.add_argument("--profile", action="store_true", help="also profile one in-process run with cProfile")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="tiny_cases_") as tmp:
        folder = Path(tmp) / "cases"
        write_tiny_cases(folder, args.count)
        startup = min(time_interpreter_start() for _ in range(2))
        times, cpu_times = [], []
        for _ in range(args.repeat):
            seconds, cpu_seconds, completed = time_run(folder)
            if completed.returncode != 0:
                print(completed.stdout[-2000:], completed.stderr[-2000:], sep="\n", file=sys.stderr)
                print("conformance run failed: the timing is meaningless", file=sys.stderr)
                return 1
            times.append(seconds)
            cpu_times.append(cpu_seconds)
        best, median = min(times), statistics.median(times)
        print(
            f"conformance run over {args.count} tiny cases: best {best:.2f} s, median {median:.2f} s "
            f"of {args.repeat} runs (target: {args.count / 100:.1f} s, i.e. 10 s per 1,000); "
            f"CPU time best {min(cpu_times):.2f} s"
        )
        print(
            f"  interpreter start + imports: {startup:.2f} s; per case after that: "
            f"{1000 * (best - startup) / args.count:.2f} ms (target: 2 ms)"
        )
        if args.profile:
            import cProfile
            import pstats

            from conformance.cli import main as conformance_main

            profiler = cProfile.Profile()
            profiler.runcall(conformance_main, ["run", str(folder), "-q"])
            pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(35)
    return 0


if __name__ == "__main__":
    sys.exit(main())
