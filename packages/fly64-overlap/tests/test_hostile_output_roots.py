"""Hostile Phase D output roots (issue 20, section 1): links and shared roots never cost data.

A colleague plants a link at a dose folder of the Phase D root, or points the
output root at Phase C's. Each is refused in one line before anything outside
the root, or anything of the input, is touched.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fly64_overlap.cli import main


def _run(phase_c: Path, out: Path, *extra: str) -> int:
    return main(["--phase-c-root", str(phase_c), "--output-root", str(out), *extra])


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_dose_folder_link_is_refused_and_the_outside_folder_kept(phase_c, tmp_path, capsys):
    out = tmp_path / "phase_d"
    assert _run(phase_c, out) == 0
    outside = tmp_path / "outside"
    (outside / "dense").mkdir(parents=True)
    (outside / "dense" / "thesis.txt").write_text("years of work")
    dose_dir = next(out.glob("dose_*"))
    dose_dir.rename(tmp_path / "moved_away")
    dose_dir.symlink_to(outside, target_is_directory=True)
    manifest = (out / "overlap_manifest.json").read_bytes()
    capsys.readouterr()
    assert _run(phase_c, out) == 1
    _one_line_error(capsys, str(dose_dir), "symbolic link")
    assert (outside / "dense" / "thesis.txt").read_text() == "years of work"
    assert (out / "overlap_manifest.json").read_bytes() == manifest


@pytest.mark.parametrize("where", [".", "sub"])
def test_an_output_root_equal_to_or_inside_phase_c_is_refused(phase_c, capsys, where):
    before = _tree(phase_c)
    assert _run(phase_c, phase_c / where) == 1
    _one_line_error(capsys, "--output-root", "--phase-c-root")
    assert _tree(phase_c) == before


def test_an_output_root_holding_another_phases_manifest_is_refused(phase_c, tmp_path, capsys):
    out = tmp_path / "phase_e"
    out.mkdir()
    (out / "training_manifest.json").write_text("{}")
    assert _run(phase_c, out) == 1
    _one_line_error(capsys, "training_manifest.json")
    assert sorted(p.name for p in out.iterdir()) == ["training_manifest.json"]
