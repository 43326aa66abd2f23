"""The fuzzer: what it draws, that the reference survives it, that it catches a planted bug and
writes a minimal case that reproduces it, and that a seed repeats a campaign exactly."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from conformance.cases.features import error_kinds_of
from conformance.cases.loader import load_file
from conformance.cases.schema import DTYPES
from conformance.cli import main
from conformance.running.implementations import load_implementation
from conformance.tools.coverage import coverage_grid
from conformance.tools.fuzz import build_case, implemented_ops, run_campaign
from conformance.tools.strategies import FUZZ_DTYPES, FUZZ_OPS, DrawnCase, case_documents
from tests.helpers import assert_is_case

INTERLEAVED = "tests.plugins.wrong_convs:interleaved_groups"


def draw_many(count: int, invalid_rate: float) -> list[DrawnCase]:
    """``count`` derandomised draws (no implementation is run)."""
    drawn: list[DrawnCase] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case_documents(invalid_rate=invalid_rate))
    def collect(case: DrawnCase) -> None:
        drawn.append(case)

    collect()
    return drawn


def test_drawn_cases_load_fill_every_cell_of_the_grid_and_invalid_ones_say_why() -> None:
    valid, invalid = draw_many(300, invalid_rate=0.0), draw_many(600, invalid_rate=1.0)
    assert all(item.invalid_kind is None for item in valid)
    assert all(item.invalid_kind is not None for item in invalid)
    cases = []
    for item in valid + invalid:
        case = build_case(item.document)  # the loader accepts every draw
        kinds = error_kinds_of(case.conv, case.input_shape)
        if item.invalid_kind is None:
            assert not kinds and case.expect_error is None, item
        else:
            assert item.invalid_kind in kinds and case.expect_error is not None, item
        cases.append(case)
    empty = {(cell.axis, cell.name) for cell in coverage_grid(cases).empty_cells}
    # Only what the fuzzer does not do: gradients, golden outputs, dtypes other than its own.
    never = {("backward", "gradients checked"), ("golden", "expected output given")}
    never |= {("dtype", name) for name in DTYPES if name not in FUZZ_DTYPES}
    assert empty == never


def test_every_op_is_drawn_and_only_ops_asked_for() -> None:
    ops = {build_case(item.document).conv.type for item in draw_many(120, invalid_rate=0.2)}
    assert ops == set(FUZZ_OPS)
    drawn: list[DrawnCase] = []
    run_campaign(
        load_implementation(None), max_examples=20, seed=2, ops=("ConvTranspose1d", "Conv3d"), on_example=drawn.append
    )
    assert {build_case(item.document).conv.type for item in drawn} == {"ConvTranspose1d", "Conv3d"}
    # A single conv2d function is fuzzed on Conv2d only (it defines no other op).
    assert implemented_ops(load_implementation(INTERLEAVED)) == ("Conv2d",)


def test_the_fuzzer_finds_a_planted_transposed_bug() -> None:
    planted = load_implementation(importlib.import_module("tests.plugins.nd_bugs.transposed_outputs_interleaved"))
    finding = run_campaign(planted, max_examples=150, seed=0, ops=("ConvTranspose2d", "ConvTranspose1d")).finding
    assert finding is not None
    case = build_case(finding.document)
    # shrunk to the smallest layer that can show interleaving: 2 groups of 2 outputs
    assert case.conv.transposed and case.conv.groups == 2 and case.conv.out_channels == 4, finding.document


def test_the_reference_agrees_with_torch_on_a_derandomised_campaign() -> None:
    drawn: list[DrawnCase] = []
    result = run_campaign(
        load_implementation(None), max_examples=200, seed=0, invalid_rate=0.25, on_example=drawn.append
    )
    assert result.finding is None, result.finding and result.finding.message
    assert result.examples == len(drawn) == 200
    assert any(d.invalid_kind for d in drawn) and any(d.document["conv"]["groups"] > 1 for d in drawn)


def test_a_seed_repeats_a_campaign_exactly() -> None:
    def campaign(seed: int) -> list[dict]:
        drawn: list[DrawnCase] = []
        run_campaign(load_implementation(None), max_examples=15, seed=seed, invalid_rate=0.3, on_example=drawn.append)
        return [d.document for d in drawn]

    first = campaign(3)
    assert campaign(3) == first
    assert campaign(4) != first


@pytest.mark.slow
def test_the_fuzzer_finds_a_planted_bug_and_writes_a_minimal_case_that_reproduces_it(tmp_path: Path, capsys) -> None:
    out = tmp_path / "findings"
    code = main(["fuzz", "--impl", INTERLEAVED, "--seed", "0", "--max-examples", "100", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 1, text
    written = re.search(r"^wrote (\S+)$", text, re.MULTILINE)
    assert written, text
    path = Path(written.group(1))
    assert f"reproduce: conformance run {path} --impl {INTERLEAVED}" in text
    assert list(out.iterdir()) == [path]

    # The file stands alone: explicit values, loadable by the ordinary loader ...
    case = assert_is_case(load_file(path)[0])
    assert case.input.generator == "values" and case.weight.generator == "values"
    # ... and shrunk to the smallest layer that can show interleaving: 2 groups of 2 outputs.
    assert (case.conv.groups, case.conv.out_channels, case.conv.kernel_hw) == (2, 4, (1, 1))

    # It fails the planted bug and passes the reference, run as any case file is.
    assert main(["run", str(path), "--impl", INTERLEAVED]) == 1
    assert "interleaved_groups vs torch" in capsys.readouterr().out
    assert main(["run", str(path)]) == 0


@pytest.mark.slow
def test_workers_split_the_seed_range_and_find_what_single_campaigns_find(tmp_path: Path, capsys) -> None:
    # hypothesis also draws from the literal constants of the project modules loaded
    # (hypothesis.internal.conjecture.providers._get_local_constants), so which examples a seed
    # gives depends on what each process imported: a worker and this process need not find the bug
    # at the same example, only both find it.
    code = main(
        [
            "fuzz",
            "--impl",
            INTERLEAVED,
            "--seed",
            "0",
            "--max-examples",
            "8",
            "--workers",
            "2",
            "--out",
            str(tmp_path / "workers"),
        ]
    )
    text = capsys.readouterr().out
    assert code == 1 and "4 examples on each of seeds 0-1" in text
    found_by_workers = sorted((tmp_path / "workers").iterdir())
    found = re.findall(r"seed ([01]): disagreement at example \d+,", text)
    # One case file per finding seed, except where two seeds shrink to the same minimal case: that
    # one is written once and reported as such (CI saw both seeds shrink to the same 2-group layer).
    same = len(re.findall(r"the same minimal case as seed [01]: ", text))
    assert found and len(found_by_workers) == len(found) - same >= 1, text
    # The same seed range in this process finds the planted bug too.
    impl = load_implementation(INTERLEAVED)
    assert any(run_campaign(impl, max_examples=4, seed=seed).finding is not None for seed in (0, 1))
    # Every file the workers wrote stands alone: it fails the planted bug and passes the reference.
    for path in found_by_workers:
        assert main(["run", str(path), "--impl", INTERLEAVED, "-q"]) == 1
        assert main(["run", str(path), "-q"]) == 0


def test_a_clean_campaign_exits_0_and_bad_arguments_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["fuzz", "--seed", "1", "--max-examples", "5", "--out", str(tmp_path)]) == 0
    assert "no disagreement in 5 examples" in capsys.readouterr().out
    assert main(["fuzz", "--impl", "nowhere:f", "--max-examples", "5"]) == 2
    assert "cannot import 'nowhere'" in capsys.readouterr().err


def test_without_hypothesis_fuzz_names_the_extra_and_the_rest_still_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # hypothesis is the [fuzz] extra, not a runtime dependency: make it unimportable.
    import conformance.tools

    monkeypatch.setitem(sys.modules, "hypothesis", None)
    for name in ("fuzz", "strategies"):
        monkeypatch.delitem(sys.modules, f"conformance.tools.{name}", raising=False)
        monkeypatch.delattr(conformance.tools, name, raising=False)
    assert main(["fuzz", "--max-examples", "1", "--seed", "0"]) == 2
    assert 'pip install "groups-conformance[fuzz]"' in capsys.readouterr().err
    assert main(["validate", str(Path(__file__).parents[1] / "cases" / "seed")]) == 0
