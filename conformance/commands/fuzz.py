"""``conformance fuzz``: search the configuration space for a disagreement with torch."""

from __future__ import annotations

import argparse
import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import torch

from conformance.commands import UsageError, add_implementation_arguments, guarded, implementation_from, positive_int
from conformance.reporting.terminal import format_failure
from conformance.running.implementations import load_implementation
from conformance.running.runner import PASSED

if TYPE_CHECKING:
    from conformance.tools.fuzz import CampaignResult

DEFAULT_OUT = "fuzz-findings"
# hypothesis is not a runtime dependency (run, validate, check and the pytest gate never need it).
MISSING_HYPOTHESIS = 'conformance fuzz needs hypothesis, the [fuzz] extra: pip install "groups-conformance[fuzz]"'


def fuzz_tools() -> ModuleType:
    """``conformance.tools.fuzz``, imported when a campaign starts; a usage error naming the extra to
    install when hypothesis is missing."""
    try:
        from conformance.tools import fuzz
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "hypothesis":
            raise
        raise UsageError(MISSING_HYPOTHESIS) from None
    return fuzz


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fuzz",
        help="draw random layers with hypothesis until the implementation disagrees with torch",
        description="Draw valid (and some invalid) grouped convolutions with hypothesis, run each through the "
        "implementation under test and torch exactly as `conformance run` would, and on a "
        "disagreement shrink it to a minimal case and write it as a YAML case file. Exit 1 if "
        "anything was found.",
    )
    add_implementation_arguments(parser)
    parser.add_argument(
        "--max-examples",
        type=positive_int,
        default=200,
        metavar="N",
        help="cases to draw in all, split across workers (default 200)",
    )
    parser.add_argument(
        "--seed",
        type=_non_negative,
        default=None,
        metavar="S",
        help="repeat a campaign exactly (default: a fresh seed, printed); worker i runs seed S+i",
    )
    parser.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"where to write the case files of findings (default {DEFAULT_OUT}/)",
    )
    parser.add_argument(
        "--invalid-rate",
        type=_probability,
        default=0.1,
        metavar="P",
        help="share of drawn layers made invalid on purpose, 0 to 1 (default 0.1)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="parallel campaigns (processes), each on its own seed (default 1)",
    )
    parser.set_defaults(handler=guarded(fuzz_command))


def _non_negative(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text}")
    return value


def _campaign_in_worker(
    impl_spec: str | None, max_examples: int, seed: int, invalid_rate: float, options: dict | None = None
) -> CampaignResult:
    """One campaign in a worker process; the parent writes and re-checks what it found."""
    result = fuzz_tools().run_campaign(
        load_implementation(impl_spec, **(options or {})),
        max_examples=max_examples,
        seed=seed,
        invalid_rate=invalid_rate,
    )
    if result.finding is not None:
        result.finding.result = None  # arrays and exceptions need not cross back
    return result


def fuzz_command(args: argparse.Namespace) -> int:
    fuzz = fuzz_tools()  # fails early, with exit 2, without hypothesis
    implementation = implementation_from(args)  # fails early, with exit 2, on a bad --impl
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    seeds = fuzz.worker_seeds(seed, args.workers)
    per_worker = fuzz.examples_per_worker(args.max_examples, args.workers)
    mode = "computes in float64" if implementation.computes_in_float64 else "gets the case's dtype"
    print(
        f"fuzzing {implementation.name} ({mode}) against torch {torch.__version__}: "
        f"{per_worker} examples on each of seeds {_seed_range(seeds)}, {args.invalid_rate:.0%} invalid layers"
    )
    if args.seed is None:
        print(f"(repeat this campaign with --seed {seed})")

    if args.workers == 1:
        results = [
            fuzz.run_campaign(implementation, max_examples=per_worker, seed=seed, invalid_rate=args.invalid_rate)
        ]
    else:
        # spawn, not fork: torch's thread pools do not survive a fork safely.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=context) as pool:
            futures = [
                pool.submit(_campaign_in_worker, args.impl, per_worker, s, args.invalid_rate, implementation.options)
                for s in seeds
            ]
            results = [future.result() for future in futures]

    written: dict[Path, int] = {}  # case file -> the seed that wrote it first
    for result in results:
        finding = result.finding
        if finding is None:
            print(f"seed {result.seed}: {result.examples} examples, no disagreement")
            continue
        print(
            f"seed {result.seed}: disagreement at example {finding.found_at}, shrunk to a minimal case "
            f"({result.examples} cases run in all)"
        )
        path = fuzz.write_finding(finding, Path(args.out), args.impl)
        if path in written:  # campaigns often shrink to the same minimal case
            print(f"the same minimal case as seed {written[path]}: {path}")
            continue
        written[path] = result.seed
        rerun = fuzz.rerun_written(path, implementation)
        if rerun.status == PASSED:
            print(f"warning: {path} passes when run again: is {implementation.name} deterministic?")
        else:
            print(format_failure(rerun))
        print(f"wrote {path}")
        print(f"reproduce: {fuzz.reproduce_command(path, args.impl)}")
    if written:
        print(f"{len(written)} finding(s) in {args.out}/; move a case into cases/ to keep it in the library")
        return 1
    print(f"no disagreement in {sum(r.examples for r in results)} examples")
    return 0


def _seed_range(seeds: list[int]) -> str:
    return str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
