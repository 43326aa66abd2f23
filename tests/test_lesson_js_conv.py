"""The lesson page's own JavaScript convolution (conformance/teaching/lesson_assets/conv.js, run by
node through tests/plugins/lesson_js.py) gated like any implementation: every forward case of the
library in float32 or float64, for all six ops, must pass against torch, refusals included."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.cases.loader import load_cases
from conformance.cases.schema import Case
from conformance.running.implementations import load_implementation
from conformance.running.runner import run_case
from tests.plugins.lesson_js import node_binary

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "tests" / "plugins" / "lesson_js.py"
OPS = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")

pytestmark = pytest.mark.skipif(node_binary() is None, reason="node is not installed (apt-get install nodejs)")


def forward_cases() -> list[Case]:
    cases = [c for c in load_cases([ROOT / "cases"]) if isinstance(c, Case)]
    return [c for c in cases if c.dtype in ("float32", "float64") and not c.backward]


@pytest.mark.slow
def test_the_page_convolution_passes_the_library_forward_cases_of_all_six_ops() -> None:
    implementation = load_implementation(str(PLUGIN))
    cases = forward_cases()
    results = [run_case(case, implementation) for case in cases]
    failed = [f"{r.name}: {r.status}: {r.message}" for r in results if r.status != "passed"]
    assert failed == []
    ran = {case.conv.type for case, result in zip(cases, results, strict=True) if result.status == "passed"}
    assert ran == set(OPS)
    assert len(results) > 200


def test_the_page_convolution_computes_the_seed_and_refuses_an_invalid_layer() -> None:
    import numpy as np

    from tests.plugins import lesson_js

    x = np.array([0.1, 1, 10, 100, 1000, 10000]).reshape(1, 6, 1, 1)
    w = np.arange(1, 13, dtype=np.float64).reshape(6, 2, 1, 1)
    assert np.allclose(lesson_js.conv2d(x, w, groups=3).reshape(-1), [2.1, 4.3, 650, 870, 109000, 131000])
    with pytest.raises(ValueError, match="divisible by groups"):  # 5 output channels in 3 groups
        lesson_js.conv2d(np.ones((1, 6, 1, 1)), np.ones((5, 2, 1, 1)), groups=3)
    t = lesson_js.conv_transpose2d(
        np.array([1.0, 10, 100, 1000]).reshape(1, 4, 1, 1), np.arange(1.0, 13).reshape(4, 3, 1, 1), groups=2
    )
    assert t.reshape(-1).tolist() == [41, 52, 63, 10700, 11800, 12900]
