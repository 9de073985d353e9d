"""fly64-manifest's modules import each other one way: no cycle, not even through an import inside a function.

(``nox -s lint`` enforces the same order with import-linter's ``manifest-layers`` contract; this test
keeps the package's own suite honest where import-linter is not installed.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import fly64_manifest

PACKAGE = Path(fly64_manifest.__file__).parent


def _imports(path: Path) -> set[str]:
    """Sibling modules ``path`` imports anywhere in its text (top level or inside a function)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fly64_manifest"):
            parts = node.module.split(".")
            if len(parts) > 1:
                found.add(parts[1])
            else:  # from fly64_manifest import x: the package itself, i.e. its __init__
                found.add("__init__")
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("fly64_manifest."))
    return found - {path.stem}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path, or None."""
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*trail[trail.index(nxt):], nxt] if nxt in trail else [node, nxt]
            if nxt not in state and (found := visit(nxt, [*trail, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_no_module_of_the_package_imports_back_up():
    # __init__ counts as a module: it imports nearly every other, so a module naming the package is a cycle.
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py")}
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph) or [])}"


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"io": {"schema"}, "schema": {"io"}, "models": set()}) in (["io", "schema", "io"],
                                                                           ["schema", "io", "schema"])
