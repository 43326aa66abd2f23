"""The README teaches with numbers and code; these tests keep them true.

Its python snippets run and print what their comments say, its example case passes, its arithmetic
(the saving of groups, the output-size formula) is recomputed, and its shape (at most 250 lines, the
seed table on the first screen) is held.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from pathlib import Path

import jsonschema
import pytest
import torch

from conformance.cases.yaml_loader import load_documents
from conformance.cli import main
from conformance.commands.schema import case_schema

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
LINES = README.splitlines()


def fenced_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def test_the_readme_is_short_with_the_seed_table_on_the_first_screen() -> None:
    assert len(LINES) <= 250, f"README.md has {len(LINES)} lines; move detail to docs/"
    seed_rows = [
        "2.1 = 1×0.1 + 2×1",
        "4.3 = 3×0.1 + 4×1",
        "650 = 5×10 + 6×100",
        "870 = 7×10 + 8×100",
        "109000 = 9×1000 + 10×10000",
        "131000 = 11×1000 + 12×10000",
    ]
    first_screen = LINES[:80]
    header = next(i for i, line in enumerate(first_screen) if line.startswith("| output channel | group |"))
    assert first_screen[header + 1].startswith("|---")  # a real table, not a headerless fragment
    rows = first_screen[header + 2 : header + 8]
    assert [row.split("|")[4].strip() for row in rows] == seed_rows


@pytest.mark.parametrize("snippet", fenced_blocks(README, "python"))
def test_the_python_snippets_print_what_their_comments_say(snippet: str) -> None:
    # `print(...)  # TEXT`: the line printed must be TEXT
    promised = [match.group(1) for match in re.finditer(r"^print\(.*\)  # (.*)$", snippet, flags=re.MULTILINE)]
    assert promised, "a snippet with no checked output teaches nothing testable"
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(snippet, "README.md snippet", "exec"), {})
    assert output.getvalue().splitlines() == promised


def test_a_grouped_convolution_is_the_concatenation_of_per_group_convolutions() -> None:
    """The README's claim in general (a 3×3 kernel, stride, padding, random values), not only for the seed."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 7, 5, generator=generator, dtype=torch.float64)
    weight = torch.randn(9, 2, 3, 3, generator=generator, dtype=torch.float64)  # out 9, groups 3: 3 outputs per group
    grouped = torch.nn.functional.conv2d(x, weight, stride=2, padding=1, groups=3)
    parts = [
        torch.nn.functional.conv2d(xp, wp, stride=2, padding=1)
        for xp, wp in zip(x.chunk(3, dim=1), weight.chunk(3, dim=0), strict=False)
    ]
    torch.testing.assert_close(grouped, torch.cat(parts, dim=1))


def test_the_saving_of_groups_is_worked_out_right() -> None:
    pixels = 56 * 56
    dense, grouped = 128 * 128 * 9, 128 * (128 // 32) * 9
    separable = 128 * 9 + 128 * 128
    for number in (
        f"{dense:,}",
        f"{grouped:,}",
        f"{separable:,}",
        f"{dense * pixels / 1e6:.1f} M",
        f"{grouped * pixels / 1e6:.1f} M",
        f"{separable * pixels / 1e6:.1f} M",
        f"1/{dense / separable:.1f}",
        f"{dense / separable:.1f} times less",
    ):
        assert number in README, number
    assert math.isclose(separable / dense, 1 / 128 + 1 / 9)  # the "1/out_channels + 1/9" of the text
    assert "1/out_channels + 1/9" in README


def conv_size(h: int, k: int, s: int, p: int, d: int) -> int:
    return math.floor((h + 2 * p - d * (k - 1) - 1) / s) + 1  # the README's formula


def transposed_size(h: int, k: int, s: int, p: int, d: int, output_padding: int) -> int:
    return (h - 1) * s - 2 * p + d * (k - 1) + output_padding + 1  # the README's formula


def test_the_output_size_formulas_are_torchs() -> None:
    assert "H_out = floor((H + 2·p − d·(k − 1) − 1) / s) + 1" in README
    assert "H_out = (H − 1)·s − 2·p + d·(k − 1) + output_padding + 1" in README
    for h, k, s, p, d in [(7, 3, 2, 1, 1), (8, 3, 3, 0, 2), (5, 1, 1, 0, 1), (11, 4, 2, 3, 3), (9, 2, 1, 0, 1)]:
        x = torch.zeros(1, 4, h, 3)
        y = torch.nn.functional.conv2d(
            x, torch.zeros(4, 2, k, 1), stride=(s, 1), padding=(p, 0), dilation=(d, 1), groups=2
        )
        assert y.shape[2] == conv_size(h, k, s, p, d)
        output_padding = s - 1  # must be smaller than the stride or the dilation
        y = torch.nn.functional.conv_transpose2d(
            x,
            torch.zeros(4, 2, k, 1),
            stride=(s, 1),
            padding=(p, 0),
            output_padding=(output_padding, 0),
            dilation=(d, 1),
            groups=2,
        )
        assert y.shape[2] == transposed_size(h, k, s, p, d, output_padding)


def readme_case() -> str:
    (block,) = [block for block in fenced_blocks(README, "yaml") if "name: mine/" in block]
    return block


def test_the_readme_example_case_passes(tmp_path: Path) -> None:
    file = tmp_path / "cases" / "mine" / "four_to_two.yaml"
    file.parent.mkdir(parents=True)
    file.write_text(readme_case(), encoding="utf-8")
    assert f"Saved as `cases/mine/{file.name}`" in README
    assert main(["validate", str(file.parent)]) == 0
    assert main(["run", str(file), "-q"]) == 0  # its `expected` agrees with torch and the reference
    (document,) = load_documents(file)
    jsonschema.Draft202012Validator(case_schema()).validate(document.data)


def test_the_readme_example_names_the_schema_with_a_path_that_resolves() -> None:
    first_line = readme_case().splitlines()[0]
    match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first_line)
    assert match, first_line
    # yaml-language-server takes a relative path from the case file's folder: cases/mine/ here
    assert (ROOT / "cases" / "mine" / match.group(1)).resolve() == ROOT / "conformance" / "case_schema.json"


def test_the_explain_page_shows_the_current_explain_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "100")
    page = (ROOT / "docs" / "explain.md").read_text(encoding="utf-8")
    marker = "<!-- explain-output: cases/seed/groups3.yaml"
    block = page.split(marker, 1)[1].split("```text\n", 1)[1].split("\n```", 1)[0]
    assert main(["explain", "cases/seed/groups3.yaml"]) == 0
    out = capsys.readouterr().out
    # the float32 errors quoted (1.91e-07 and the like) depend on the machine's summation order
    normalise = lambda text: re.sub(r"\d+(\.\d+)?e[+-]\d+", "…", text.rstrip())  # noqa: E731
    assert normalise(block) == normalise(out), "docs/explain.md's explain output is out of date: paste the new one"
