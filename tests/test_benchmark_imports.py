"""The benchmark scripts import the project's API inside functions; every such import must resolve.

The benchmarks run on a lent GPU machine for minutes at most, so a name moved by a refactor must fail
here, on CPU in the fast suite, and not there (a moved ``make_groups`` once broke ``bench_train.py``).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
PROJECT_PACKAGES = ("fly64_data", "fly64_overlap", "fly64_train", "fly64_manifest", "fly64_iterative",
                    "fly64_compare")


def _project_imports(path: Path) -> list[tuple[str, str | None, int]]:
    """(module, name or None, line) of every project import in ``path``, top-level or inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in PROJECT_PACKAGES:
                found += [(node.module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names
                      if alias.name.split(".")[0] in PROJECT_PACKAGES]
    return found


SCRIPTS = sorted(BENCHMARKS.rglob("*.py"))


def test_the_benchmarks_are_found():
    assert any(p.name == "bench_train.py" for p in SCRIPTS)
    assert _project_imports(BENCHMARKS / "bench_train.py"), "bench_train.py imports the project"
    # The measuring scripts too (issue 23's phase gauge imports the scorer and the stitch inside functions).
    assert _project_imports(BENCHMARKS / "phase_gauge.py"), "phase_gauge.py imports the project"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(BENCHMARKS)))
def test_every_project_import_of_a_benchmark_resolves(script: Path):
    missing = []
    for module, name, line in _project_imports(script):
        try:
            imported = importlib.import_module(module)
        except ImportError as exc:
            missing.append(f"{script.name}:{line}: import {module}: {exc}")
            continue
        if name is not None and name != "*" and not hasattr(imported, name):
            try:  # a submodule named in `from package import submodule`
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{script.name}:{line}: {module} has no {name}")
    assert not missing, "\n".join(missing)


def test_a_moved_name_is_caught(tmp_path: Path):
    """The check bites: an import of a name the module does not hold is reported."""
    script = tmp_path / "bench_x.py"
    script.write_text("def f():\n    from fly64_train.data.grouping import make_groups\n")
    (module, name, _), = _project_imports(script)
    assert not hasattr(importlib.import_module(module), name)
