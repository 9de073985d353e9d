"""Standing hostile suite for the report's inputs (issue 20, section 7).

A job's ``reconstruction.npz`` is a file in a shared study folder: a colleague, a
full disk or another tool may leave it with a member missing, a 0-d or complex 3-D
member, or a pickled object array. Each must be refused from the NPZ headers,
before any array reaches numpy or matplotlib, with one line naming the file and
the key; and a report is published only whole: an existing report is never
half-overwritten.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fly64_train.cli import main as cli_main
from fly64_train.studies.report import FILES, write_report

TINY_TRAIN = ["--max-epochs", "1", "--n-groups", "8", "--batch-size", "4", "--base-width", "4", "--deterministic",
              "--logger", "none", "--dose", "1000", "--view", "baseline"]


@pytest.fixture(scope="module")
def one_job(tiny_study_data, tmp_path_factory) -> Path:
    """An artifact root with one trained and evaluated job (dose 1000, baseline); copy before changing it."""
    root = tmp_path_factory.mktemp("report_inputs") / "phase_e"
    assert cli_main(["--phase-c-root", str(tiny_study_data / "phase_c"), "--phase-d-root",
                     str(tiny_study_data / "phase_d"), "--artifact-root", str(root), *TINY_TRAIN]) == 0
    return root


def _copy_with(one_job: Path, tmp_path: Path, edit) -> tuple[Path, Path]:
    """A copy of the root whose job's ``reconstruction.npz`` arrays went through ``edit(dict) -> dict``."""
    root = tmp_path / "phase_e"
    shutil.copytree(one_job, root, symlinks=True)
    (npz,) = root.rglob("reconstruction.npz")
    with np.load(npz, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays = edit(arrays)
    with zipfile.ZipFile(npz, "w") as zf:  # written member by member: np.savez refuses nothing we need here
        for key, value in arrays.items():
            with zf.open(f"{key}.npy", "w") as fh:
                np.lib.format.write_array(fh, value, allow_pickle=True)
    return root, npz


def _without(key):
    def edit(arrays):
        del arrays[key]
        return arrays
    return edit


def _replaced(key, value):
    def edit(arrays):
        arrays[key] = value(arrays[key]) if callable(value) else value
        return arrays
    return edit


CASES = {
    "missing member": (_without("phase"), "phase", "missing"),
    "0-d member": (_replaced("amplitude", np.float32(1.0)), "amplitude", "0-D"),
    "complex 3-D member": (_replaced("phase", lambda a: np.stack([a, a]).astype(np.complex64)), "phase", "3-D"),
    "pickled object array": (_replaced("amplitude_true", lambda a: np.array([{"x": 1}, None], dtype=object)),
                             "amplitude_true", "object"),
    "shape differs": (_replaced("phase_true", lambda a: a[:-1]), "phase_true", "shape"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_reconstruction_member_is_one_line_naming_the_file_and_key(one_job, tmp_path, capsys, case):
    edit, key, complaint = CASES[case]
    root, npz = _copy_with(one_job, tmp_path, edit)
    out = tmp_path / "report"
    code = cli_main(["report", "--artifact-root", str(root), "--output", str(out)])
    err = capsys.readouterr().err
    assert code != 0
    lines = [line for line in err.splitlines() if str(npz) in line]
    assert len(lines) == 1 and f"{key!r}" in lines[0] and complaint in lines[0], err
    assert "Traceback" not in err


def test_an_existing_report_is_never_half_overwritten(one_job, tmp_path, capsys):
    out = tmp_path / "report"
    write_report(one_job, out)
    (out / "notes.txt").write_text("mine")
    # Something in the way of the last file (a folder where a figure goes): before, report.md, metrics.csv
    # and the first figure were replaced before the write failed, mixing two reports in one folder.
    last = FILES[-1]
    (out / last).unlink()
    (out / last).mkdir()
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    root, npz = _copy_with(one_job, tmp_path, lambda arrays: arrays)  # the same study, re-reported
    code = cli_main(["report", "--artifact-root", str(root), "--output", str(out)])
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1 and last in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["phase_e", "report"]  # no staging folder left over
