"""Project sessions: tests, collect, red, green, lint.

Sessions run in the environment that ``make setup`` built (``.venv``) instead of
creating their own: torch alone is over a gigabyte, and every install path must
go through the one root ``constraints.txt`` anyway. Run them as ``make test`` or
``.venv/bin/nox -s <session>``.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists())
SELECTORS_FILE = ROOT / "tests" / "selectors.toml"
RED_GREEN_LOGS = ROOT / ".red-green"

nox.options.sessions = ["lint", "tests", "slow"]
nox.options.default_venv_backend = "none"


def _test_dirs() -> list[str]:
    dirs = [str(p / "tests") for p in PACKAGES if (p / "tests").is_dir()]
    dirs.append(str(ROOT / "tests"))
    return dirs


def _selectors() -> dict[str, list[str]]:
    with SELECTORS_FILE.open("rb") as fh:
        table = tomllib.load(fh).get("selectors", {})
    return {name: list(ids) for name, ids in table.items()}


def _collected_count(session: nox.Session, *targets: str) -> int:
    out = session.run(
        sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
        *targets, silent=True, success_codes=[0, 5],
    )
    match = re.search(r"(\d+) tests? collected", out or "")
    return int(match.group(1)) if match else 0


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    """Every package suite plus the cross-package end-to-end tests, in parallel."""
    # loadfile: a module's tests share one worker, so a module-scoped study fixture is built once.
    args = session.posargs or ["-n", "auto", "--dist", "loadfile"]
    session.run(sys.executable, "-m", "pytest", "-m", "not slow", *args, *_test_dirs())


@nox.session(python=False)
def slow(session: nox.Session) -> None:
    """The checks marked ``slow`` (several real trainings, TF tracing, Dask clusters); CI runs them too."""
    args = session.posargs or ["-n", "auto", "--dist", "loadfile"]
    session.run(sys.executable, "-m", "pytest", "-m", "slow", *args, *_test_dirs())


@nox.session(python=False)
def torch_only(session: nox.Session) -> None:
    """A torch-only install (fly64-train[torch]) runs and evaluates the torch study: TensorFlow, Keras and Dask
    are hidden from a subprocess's imports, as in an environment without them."""
    session.run(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                str(ROOT / "packages/fly64-train/tests/backends/torch/test_torch_only_install.py"),
                str(ROOT / "packages/fly64-train/tests/backends/torch/test_torch_only_session.py"))


@nox.session(python=False)
def collect(session: nox.Session) -> None:
    """Fail if any package, or any registered selector, collects zero tests."""
    empty = []
    for target in [*(p / "tests" for p in PACKAGES), ROOT / "tests"]:
        count = _collected_count(session, str(target))
        session.log(f"{target.relative_to(ROOT)}: {count} tests")
        if count == 0:
            empty.append(str(target.relative_to(ROOT)))
    for name, ids in _selectors().items():
        count = _collected_count(session, *ids)
        session.log(f"selector {name}: {count} tests")
        if count == 0:
            empty.append(f"selector {name}")
    if empty:
        session.error("collected zero tests: " + ", ".join(empty))


def _run_selector(session: nox.Session, expect_pass: bool) -> None:
    if len(session.posargs) != 1:
        session.error(f"usage: nox -s {session.name} -- SELECTOR (one of {sorted(_selectors())})")
    name = session.posargs[0]
    selectors = _selectors()
    if name not in selectors:
        session.error(f"unknown selector {name!r} in {SELECTORS_FILE.name}; known: {sorted(selectors)}")
    RED_GREEN_LOGS.mkdir(exist_ok=True)
    log = RED_GREEN_LOGS / f"{session.name}-{name}.log"
    codes = [0] if expect_pass else [1]  # 1: tests ran and failed (5 would mean nothing ran)
    with log.open("w") as fh:
        session.run(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *selectors[name],
                    stdout=fh, stderr=fh, success_codes=codes)
    session.log(f"{name}: {'passed' if expect_pass else 'failed as expected'} (log: {log.relative_to(ROOT)})")


@nox.session(python=False)
def red(session: nox.Session) -> None:
    """Run a named selector and require it to FAIL (write the test first)."""
    _run_selector(session, expect_pass=False)


@nox.session(python=False)
def green(session: nox.Session) -> None:
    """Run a named selector and require it to pass."""
    _run_selector(session, expect_pass=True)


@nox.session(python=False)
def lint(session: nox.Session) -> None:
    """ruff over packages, tests, benchmarks and this file; then the import-linter contracts (.importlinter)."""
    session.run(sys.executable, "-m", "ruff", "check", "packages", "tests", "benchmarks", "noxfile.py")
    # The console script of import-linter, run by this interpreter so that it sees the installed packages.
    session.run(sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                "sys.exit(lint_imports_command())", "--config", str(ROOT / ".importlinter"))


@nox.session(venv_backend="venv", reuse_venv=True)
def ptychodus(session: nox.Session) -> None:
    """Read a reconstruction.h5 with ptychodus 1.7's own product reader (opt-in; not part of `make test`).

    ptychodus and its many dependencies live in this session's own virtual
    environment only; the product writer needs just numpy and h5py.
    """
    session.install("ptychodus==1.7.0")
    script = str(ROOT / "tests" / "check_ptychodus_product.py")
    folder = Path(session.create_tmp()) / "product"
    folder.mkdir(exist_ok=True)
    session.run(sys.executable, script, "write", str(folder), external=True)
    session.run("python", script, "read", str(folder), env={"PYTHONPATH": ""})
