"""The docs example runs against a real tiny study; importing the package stays light."""

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "downstream.md"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_downstream_example_runs(tiny_study, monkeypatch, capsys):
    blocks = _python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) == 1
    monkeypatch.chdir(tiny_study.parent)  # the example opens Study("study")
    exec(compile(blocks[0], str(DOC), "exec"), {"__name__": "__docs__"})
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("dose 1000 sparse:") and "skipped" in line for line in out)
    assert any(line.startswith("dose 10000 dense gs2: failed") for line in out)
    assert any("dose 1000 baseline gs1: success" in line and "patched_train.npz" in line for line in out)
    table = out[out.index(next(line for line in out if line.split()[:2] == ["dose", "view"])):]
    assert len(table) == 1 + 4  # four successful jobs


def test_downstream_example_stops_on_a_modified_bundle(tiny_study, monkeypatch):
    bundle = tiny_study / "phase_e/dose_1000/dense/gs2/wts.h5.zip"
    bundle.write_bytes(bundle.read_bytes() + b"\0")
    monkeypatch.chdir(tiny_study.parent)
    try:
        exec(compile(_python_blocks(DOC.read_text(encoding="utf-8"))[0], str(DOC), "exec"), {})
    except SystemExit as exc:
        assert "wts.h5.zip" in str(exc.code)
    else:
        raise AssertionError("the example went on with a modified bundle")


def test_import_pulls_in_no_numpy_or_torch():
    # A fresh interpreter: this test process may already hold numpy from other suites.
    code = (
        "import sys, fly64_manifest, fly64_manifest.cli\n"
        "fly64_manifest.Study('.')\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'numpy', 'torch', 'scipy', 'lightning'})\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_declared_dependencies_are_jsonschema_only():
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    deps = [re.split(r"[<>=!~ \[]", d, maxsplit=1)[0] for d in pyproject["project"]["dependencies"]]
    assert deps == ["jsonschema"]
