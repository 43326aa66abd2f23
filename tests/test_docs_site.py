"""`make docs`: the griffe extension that fences the docstrings' doctests (scripts/griffe_doctests.py).

Without the fences, MkDocs reads a doctest's ``y[0][1]`` or ``[[1.0, 2.0]]`` as a reference link
and `mkdocs build --strict` fails; the site build itself runs in CI (`make docs`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_extension() -> ModuleType:
    pytest.importorskip("griffe")  # a docs tool: requirements-dev.txt, installed by make setup
    spec = importlib.util.spec_from_file_location("griffe_doctests", ROOT / "scripts" / "griffe_doctests.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_doctest_run_is_fenced_and_the_prose_around_it_is_not() -> None:
    fence = load_extension().fence_doctests
    docstring = "Two runs.\n\n    >>> y[0][1]\n    3\n    >>> [[1.0]]\n    [[1.0]]\n\nThen prose [x][y].\n\n>>> 1"
    assert fence(docstring).splitlines() == [
        "Two runs.",
        "",
        "    ```pycon",
        "    >>> y[0][1]",
        "    3",
        "    >>> [[1.0]]",
        "    [[1.0]]",
        "    ```",
        "",
        "Then prose [x][y].",
        "",
        "```pycon",
        ">>> 1",
        "```",
    ]
    assert fence("no examples here") == "no examples here"
