"""The benchmark pass (pytest-benchmark items) and `conformance bench`: what they time, what they
report, and that a wrong implementation cannot get a good-looking row. No time is asserted."""

from __future__ import annotations

import json
import math
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from conformance.cli import main
from conformance.running.implementations import load_implementation
from conformance.tools import benchmark as benchmark_module, machine as machine_module
from conformance.tools.benchmark import benchmark_case, input_pool, prepare_forwards, workload
from conformance.tools.machine import Machine, Threads, same_threads
from tests.helpers import assert_is_case, load_one, write_case

ROOT = Path(__file__).resolve().parent.parent
CASES = """
name: grouped/strided
conv: {in_channels: 4, out_channels: 6, kernel_size: [2, 3], stride: [2, 1], padding: [1, 0], groups: 2}
input: {random: {}, shape: [2, 4, 6, 9]}
---
name: depthwise/reflect
conv: {in_channels: 3, out_channels: 3, kernel_size: 3, groups: 3, padding: 1, padding_mode: reflect, bias: false}
input: {random: {}, shape: [1, 3, 4, 5]}
---
name: errors/not_divisible
conv: {in_channels: 3, out_channels: 4, kernel_size: 1, groups: 2}
input: {random: {}, shape: [1, 3, 2, 2]}
expect_error: true
"""
GROUPED_STRIDED = """
conv: {in_channels: 4, out_channels: 6, kernel_size: [2, 3], stride: [2, 1], padding: [1, 0], groups: 2}
input: {random: {}, shape: [2, 4, 6, 9]}
"""
WRONG = "tests.plugins.wrong_convs:interleaved_groups"


# --- the pytest-benchmark pass -------------------------------------------------------------


@pytest.fixture
def bench_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest('pytest_plugins = ["conformance.pytest_plugin"]')
    pytester.makeini("[pytest]\nconformance_cases = cases\n")
    (pytester.mkdir("cases") / "cases.yaml").write_text(textwrap.dedent(CASES).lstrip())
    # under its own name: in a full run the original module is already imported as test_case_benchmarks
    shutil.copy(ROOT / "benchmarks" / "test_case_benchmarks.py", pytester.path / "test_pass_copy.py")
    return pytester


def test_quick_mode_runs_each_side_of_each_runnable_case_once(bench_project: pytest.Pytester) -> None:
    result = bench_project.runpytest("test_pass_copy.py", "--benchmark-disable", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)  # 2 runnable cases x {implementation, torch}; expect_error has no forward
    text = result.stdout.str()
    assert "test_forward[grouped/strided-implementation] PASSED" in text
    assert "test_forward[depthwise/reflect-torch] PASSED" in text


def test_a_wrong_implementation_fails_its_benchmark_with_the_element(bench_project: pytest.Pytester) -> None:
    # timed in-process, as `make bench` does: a worker process would time the pipe, not the kernel
    result = bench_project.runpytest(
        "test_pass_copy.py", "--benchmark-disable", "--conv-impl", WRONG, "--conv-no-isolate"
    )
    # interleaving is the identity for depthwise (one output per group), so only grouped/strided breaks;
    # torch's items still pass
    result.assert_outcomes(passed=3, failed=1)
    text = result.stdout.str()
    assert "FAILED test_pass_copy.py::test_forward[grouped/strided-implementation]" in text
    assert f"{WRONG} vs torch: 224 of 336 elements differ" in text
    assert "output channel" in text and "which reads input channels" in text


# slow: an inner pytest session with timing on; pytest-benchmark turns timing off under xdist, which
# `make test` uses, so it runs in the (serial) slow tier.
@pytest.mark.slow
def test_timed_mode_puts_both_sides_of_a_case_in_one_group(bench_project: pytest.Pytester) -> None:
    report = bench_project.path / "report.json"
    result = bench_project.runpytest(
        "test_pass_copy.py",
        "--benchmark-enable",
        f"--benchmark-json={report}",
        "--benchmark-min-rounds=1",
        "--benchmark-max-time=0.0001",
        "--benchmark-warmup=off",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=4)
    benchmarks = json.loads(report.read_text())["benchmarks"]
    groups: dict[str, set[str]] = {}
    for entry in benchmarks:
        groups.setdefault(entry["group"], set()).add(entry["extra_info"]["side"])
        assert entry["stats"]["median"] > 0
    assert groups == {"grouped/strided": {"implementation", "torch"}, "depthwise/reflect": {"implementation", "torch"}}


# --- what is timed ---------------------------------------------------------------------------


def test_the_reference_is_timed_in_the_case_dtype_and_agrees_with_torch(tmp_path: Path) -> None:
    case = assert_is_case(load_one(tmp_path, GROUPED_STRIDED))
    forwards = prepare_forwards(case, load_implementation(None))
    assert forwards.tensors.input.dtype == np.float32
    output, torch_output = forwards.implementation(forwards.tensors.input), forwards.torch(forwards.tensors.input)
    assert output.dtype == np.float32 and torch_output.dtype == np.float32  # not the float64 oracle mode
    np.testing.assert_allclose(output, torch_output, rtol=1e-5, atol=1e-5)


def test_the_input_pool_holds_the_case_input_then_distinct_arrays(tmp_path: Path) -> None:
    case = assert_is_case(load_one(tmp_path, GROUPED_STRIDED))
    tensors = prepare_forwards(case, load_implementation(None)).tensors
    pool = input_pool(case, tensors, 3)
    assert pool[0] is tensors.input
    assert all(x.shape == (2, 4, 6, 9) and x.dtype == np.float32 for x in pool)
    assert not np.array_equal(pool[1], pool[2]) and not np.array_equal(pool[0], pool[1])


def test_workload_counts_one_groups_inputs_per_output(tmp_path: Path) -> None:
    case = assert_is_case(load_one(tmp_path, GROUPED_STRIDED))
    # output (2, 6, 4, 7): H_out = (6 + 2 - 2)//2 + 1 = 4, W_out = 9 - 3 + 1 = 7; each reads 4/2 x 2 x 3 inputs
    outputs = 2 * 6 * 4 * 7
    assert workload(case).multiply_adds == outputs * 2 * 2 * 3
    assert workload(case).bytes_moved == 4 * (2 * 4 * 6 * 9 + 6 * 2 * 2 * 3 + 6 + outputs)


def fake_machine(gemm: float = 1e9, bandwidth: float = 1e9) -> Machine:
    return Machine("test cpu", 2, Threads(1, 1, "test"), gemm, bandwidth)


def test_roofline_takes_the_slower_of_compute_and_memory() -> None:
    machine = fake_machine(gemm=100e9, bandwidth=10e9)
    assert machine.roofline_seconds(1e9, 1e6) == (pytest.approx(0.01), "compute")
    assert machine.roofline_seconds(1e6, 1e9) == (pytest.approx(0.1), "memory")


def stepping_clock(implementation_seconds: float, torch_seconds: float):
    """A clock under which every implementation call takes one time and every torch call another."""
    now, steps, index = [0.0], [0.0, implementation_seconds, 0.0, torch_seconds], [0]

    def clock() -> float:
        now[0] += steps[index[0] % 4]
        index[0] += 1
        return now[0]

    return clock


def test_rounds_statistics_and_ratio(tmp_path: Path) -> None:
    case = assert_is_case(load_one(tmp_path, GROUPED_STRIDED))
    result = benchmark_case(case, load_implementation(None), fake_machine(), rounds=7, clock=stepping_clock(3e-3, 1e-3))
    assert len(result.implementation.samples) == len(result.torch.samples) == 7
    assert result.implementation.median == pytest.approx(3e-3) and result.torch.median == pytest.approx(1e-3)
    assert result.implementation.iqr == pytest.approx(0.0, abs=1e-12)
    assert result.ratio == pytest.approx(3.0) and result.agrees
    row = result.to_json()
    assert row["gflops"] == pytest.approx(2 * workload(case).multiply_adds / 3e-3 / 1e9)


def test_automatic_rounds_run_until_each_side_has_had_its_time(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(benchmark_module, "MIN_SECONDS", 0.02)
    case = assert_is_case(load_one(tmp_path, GROUPED_STRIDED))
    result = benchmark_case(case, load_implementation(None), fake_machine(), clock=stepping_clock(0.01, 0.001))
    # torch's side is the short one: 0.02 s / 1 ms = 20 rounds (the implementation had 0.2 s by then)
    assert len(result.torch.samples) == len(result.implementation.samples) == 20
    result = benchmark_case(case, load_implementation(None), fake_machine(), clock=stepping_clock(1.0, 1.0))
    assert len(result.torch.samples) == benchmark_module.MIN_ROUNDS  # slow cases still get the minimum


def test_a_side_that_raises_is_reported_not_raised(tmp_path: Path) -> None:
    case = assert_is_case(load_one(tmp_path, GROUPED_STRIDED))
    result = benchmark_case(
        case, load_implementation("tests.plugins.wrong_convs:accepts_anything"), fake_machine(), rounds=2
    )
    assert not result.agrees and "shapes differ" in result.to_json()["error"]


def test_same_threads_sets_both_sides_and_restores_torch() -> None:
    before = torch.get_num_threads()
    with same_threads(1) as threads:
        assert torch.get_num_threads() == 1 and threads.torch == 1
        assert threads.blas in (1, None)  # None only without threadpoolctl and environment variables
    assert torch.get_num_threads() == before


def test_same_threads_reaches_numba_and_restores_it() -> None:
    """The reference's compiled kernels run on numba's threads: --threads 1 must hold there too."""
    numba = pytest.importorskip("numba")
    before = numba.get_num_threads()
    with same_threads(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before


# --- the command -----------------------------------------------------------------------------


@pytest.fixture
def small_roofline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine_module, "GEMM_SIZE", 64)
    monkeypatch.setattr(machine_module, "COPY_BYTES", 2**20)


def test_bench_command_json(tmp_path: Path, capsys, small_roofline) -> None:
    write_case(tmp_path, CASES)
    report = tmp_path / "out" / "bench.json"
    code = main(["bench", str(tmp_path / "cases"), "--rounds", "3", "--threads", "1", "--json", str(report)])
    captured = capsys.readouterr()
    assert code == 0, captured.out
    data = json.loads(report.read_text())
    machine = data["machine"]
    assert machine["torch_threads"] == 1 and machine["gemm_gflops"] > 0 and machine["bandwidth_gb_s"] > 0
    assert [c["name"] for c in data["cases"]] == ["grouped/strided", "depthwise/reflect"]
    assert data["skipped"] == [{"name": "errors/not_divisible", "reason": "expect_error"}]
    for row in data["cases"]:
        assert {
            "name",
            "reference_s",
            "torch_s",
            "ratio",
            "gflops",
            "roofline_s",
            "reference_iqr_s",
            "torch_iqr_s",
        } <= set(row)
        assert row["ratio"] == pytest.approx(row["reference_s"] / row["torch_s"])
        assert row["gflops"] == pytest.approx(2 * row["multiply_adds"] / row["reference_s"] / 1e9)
        roofline = max(
            2 * row["multiply_adds"] / (machine["gemm_gflops"] * 1e9),
            row["bytes_moved"] / (machine["bandwidth_gb_s"] * 1e9),
        )
        assert row["roofline_s"] == pytest.approx(roofline) and row["rounds"] == 3 and row["agrees_with_torch"]
    assert "grouped/strided" in captured.out and "2 cases timed" in captured.out
    assert "[" in captured.err and "2/2 done" in captured.err  # the progress bar, on stderr


def test_bench_command_flags_a_wrong_implementation_and_a_broken_file(tmp_path: Path, capsys, small_roofline) -> None:
    write_case(tmp_path, CASES)
    write_case(tmp_path, "conv: {in_channels: x}\n", "broken.yaml")
    code = main(["bench", str(tmp_path / "cases"), "--rounds", "2", "--impl", WRONG, "-k", "grouped"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"NO: {WRONG} vs torch:" in out and "1 disagree with torch" in out
    code = main(["bench", str(tmp_path / "cases"), "--rounds", "2"])
    out = capsys.readouterr().out
    assert code == 1 and "in_channels" in out and "1 broken case files" in out


def test_bench_command_refuses_a_bad_rounds_count(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--rounds", "0"])
    assert exit_info.value.code == 2 and "expected a positive integer, got 0" in capsys.readouterr().err


def test_geometric_mean_in_the_summary() -> None:
    from conformance.commands.bench import summary_line
    from conformance.tools.benchmark import CaseBenchmark, Timing, Workload

    rows = [CaseBenchmark("c", Workload(1, 1), Timing((seconds,)), Timing((1.0,))) for seconds in (4.0, 1.0)]
    assert "geometric mean 2.00, worst 4.00" in summary_line(rows, 0, 0)
    assert math.isclose(rows[0].ratio, 4.0)
