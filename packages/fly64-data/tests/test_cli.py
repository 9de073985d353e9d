"""The fly64-data command line: outputs, determinism and bad input."""

import os
import subprocess
import sys

import numpy as np
import pytest

from fly64_data.cli import main
from fly64_data.sample import default_sample, save_base_npz

SMALL = ["--patch-size", "32", "--object-size", "160", "--scan-step", "12"]


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    for needle in needles:
        assert needle in err, err
    return err


def test_same_command_twice_gives_identical_files(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    runs = []
    for name in ("a", "b"):
        root = tmp_path / name
        assert main(["generate", "--output-root", str(root), "--dose", "1000", *SMALL]) == 0
        runs.append({p: (root / p).read_bytes() for p in _tree(root) if (root / p).is_file()})
    assert runs[0].keys() == runs[1].keys() and len(runs[0]) == 3
    for key in runs[0]:
        assert runs[0][key] == runs[1][key], key


def test_base_npz_round_trip_reproduces_the_embedded_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    base = tmp_path / "base.npz"
    assert main(["base", "--output", str(base), *SMALL]) == 0
    assert main(["generate", "--output-root", str(tmp_path / "emb"), "--dose", "1000", *SMALL]) == 0
    assert main(["generate", "--output-root", str(tmp_path / "ext"), "--dose", "1000", "--base-npz", str(base),
                 "--patch-size", "32"]) == 0
    with np.load(tmp_path / "emb/dose_1000/patched_train.npz") as a, \
            np.load(tmp_path / "ext/dose_1000/patched_train.npz") as b:
        for key in ("diffraction", "Y", "xcoords", "ycoords"):
            np.testing.assert_array_equal(a[key], b[key])


def test_second_dose_run_keeps_the_first_in_the_manifest(tmp_path):
    import json

    root = tmp_path / "c"
    assert main(["generate", "--output-root", str(root), "--dose", "1000", *SMALL]) == 0
    assert main(["generate", "--output-root", str(root), "--dose", "10000", *SMALL]) == 0
    doses = [r["dose"] for r in json.loads((root / "run_manifest.json").read_text())["doses"]]
    assert doses == [1000.0, 10000.0]


def _write_base(path, **overrides):
    sample = default_sample(32, 160, 12.0)
    arrays = {"objectGuess": sample.object, "probeGuess": sample.probe}
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def _truncated(path):
    good = save_base_npz(default_sample(32, 160, 12.0), path.with_name("good.npz"))
    path.write_bytes(good.read_bytes()[:5000])
    return path


BAD_BASES = {
    "missing_key": (lambda p: _write_base(p, probeGuess=None), "missing key 'probeGuess'"),
    "real_probe_wrong_shape": (lambda p: _write_base(p, probeGuess=np.ones((16, 16), np.float32)),
                               "'probeGuess': expected shape (32, 32)"),
    "nan_object": (lambda p: _write_base(p, objectGuess=np.full((160, 160), np.nan, np.complex64)),
                   "'objectGuess': contains non-finite"),
    "truncated": (_truncated, "not a readable NPZ"),
}


@pytest.mark.parametrize("case", sorted(BAD_BASES))
def test_bad_base_npz_fails_cleanly(tmp_path, capsys, case):
    make, message = BAD_BASES[case]
    base = make(tmp_path / f"{case}.npz")
    root = tmp_path / "out"
    assert main(["generate", "--output-root", str(root), "--base-npz", str(base), "--patch-size", "32"]) == 1
    _one_line_error(capsys, str(base), message)
    assert not root.exists() or _tree(root) == []


@pytest.mark.parametrize("dose", ["0", "-5", "abc"])
def test_non_positive_dose_is_a_usage_error(tmp_path, capsys, dose):
    root = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--output-root", str(root), "--dose", dose, *SMALL])
    assert exc.value.code == 2
    assert "--dose" in capsys.readouterr().err
    assert not root.exists()


def test_failure_keeps_earlier_output(tmp_path, capsys):
    root = tmp_path / "c"
    assert main(["generate", "--output-root", str(root), "--dose", "1000", *SMALL]) == 0
    before = {p: (root / p).read_bytes() for p in _tree(root) if (root / p).is_file()}
    bad = _write_base(tmp_path / "bad.npz", objectGuess=np.full((160, 160), np.nan, np.complex64))
    assert main(["generate", "--output-root", str(root), "--base-npz", str(bad), "--patch-size", "32"]) == 1
    after = {p: (root / p).read_bytes() for p in _tree(root) if (root / p).is_file()}
    assert after == before


def test_validate_command(tmp_path, capsys):
    root = tmp_path / "c"
    assert main(["generate", "--output-root", str(root), "--dose", "1000", *SMALL]) == 0
    good = root / "dose_1000" / "patched_train.npz"
    assert main(["validate", str(good)]) == 0
    assert main(["validate", str(good), "--gridsize", "2", "--neighbor-count", "3"]) == 1
    _one_line_error(capsys, str(good), "neighbor_count")


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "fly64_data", "generate", "--help"], capture_output=True,
                         text=True, check=True, env={**os.environ, "COLUMNS": "100"}).stdout
    for flag in ("--output-root", "--base-npz", "--dose", "--patch-size", "--object-size", "--scan-step"):
        assert flag in out
