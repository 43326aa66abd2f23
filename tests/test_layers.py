"""The import graph of the harness: no cycle, and every import goes down the layers.

Read from the source with ``ast`` (every ``import``, also those inside functions), so a new
cycle or an import against the layers fails here before it confuses a reader:

    cases < judging < frameworks < running < teaching, tools < reporting < api < commands
          < cli, pytest plugin, the package itself

``teaching`` and ``tools`` are peers and do not import each other. ``frameworks`` (the built-in
adapters) is reached only through ``running`` (the implementation loader) and ``tools.matrix`` (the
framework matrix lists the built-in columns).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "conformance"

RANKS = {
    "cases": 0,
    "judging": 1,
    "frameworks": 2,
    "running": 3,
    "teaching": 4,
    "tools": 4,
    "reporting": 5,
    "api": 6,
    "notebook": 6,  # explain() for notebooks: a public entry point like api
    "commands": 7,
    "cli": 8,
    "pytest_plugin": 8,  # an entry point, like cli
    "__main__": 9,
    "": 9,  # conformance/__init__.py
}
FRAMEWORK_USERS = ("running", "tools.matrix")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def source_files() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The harness modules ``path`` imports (a ``from package import module`` counts as the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules)
    return {module for module in found if module in modules and module != name}


def import_graph() -> dict[str, set[str]]:
    files = source_files()
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def layer_of(module: str) -> str:
    """``conformance.running.checks.wiring`` -> ``running``; ``conformance.cli`` -> ``cli``."""
    return module.split(".")[1] if module.count(".") else ""


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), and self-imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in sorted(graph.items()):
        source = layer_of(module)
        for target in sorted(targets):
            layer = layer_of(target)
            if layer == source:
                continue
            if layer == "frameworks" and not any(
                module == f"conformance.{user}" or module.startswith(f"conformance.{user}.") for user in FRAMEWORK_USERS
            ):
                problems.append(f"{module} -> {target}: the built-in adapters are reached through running")
            elif RANKS[layer] >= RANKS[source]:
                problems.append(f"{module} ({source or 'the package'}) -> {target} ({layer}): against the layers")
    return problems


def test_the_graph_is_read_from_the_source() -> None:
    graph = import_graph()
    assert "conformance.judging.verdict" in graph["conformance.running.runner"]
    assert "conformance.running.isolation" in graph["conformance.commands"]  # an import inside a function counts
    assert set(RANKS) >= {layer_of(module) for module in graph}, "a new package needs its place in RANKS"


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_every_import_goes_down_the_layers() -> None:
    assert violations(import_graph()) == []


def test_a_cycle_and_a_layer_violation_are_caught() -> None:
    """The checks themselves: on a made-up graph with one cycle and two wrong-way imports."""
    graph = {
        "conformance.cases.schema": {"conformance.running.runner"},  # the case model importing the runner
        "conformance.running.runner": {"conformance.cases.schema"},
        "conformance.tools.fuzz": {"conformance.frameworks.jax_lax"},
        "conformance.frameworks.jax_lax": set(),
    }
    assert cycles(graph) == [["conformance.cases.schema", "conformance.running.runner"]]
    assert violations(graph) == [
        "conformance.cases.schema (cases) -> conformance.running.runner (running): against the layers",
        "conformance.tools.fuzz -> conformance.frameworks.jax_lax: the built-in adapters are reached through running",
    ]
