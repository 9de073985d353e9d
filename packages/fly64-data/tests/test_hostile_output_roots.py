"""Hostile Phase C output roots (issue 20, section 1): another phase's root or a linked dose folder is refused.

Writing Phase C into a Phase E root used to delete the trained jobs its manifest
still lists; a dose folder that is a link is never replaced. One line, exit 1,
nothing touched.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fly64_data.cli import main

TINY = ["--dose", "1000", "--patch-size", "32", "--object-size", "96", "--scan-step", "8"]


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("manifest", ["training_manifest.json", "overlap_manifest.json"])
def test_generate_into_another_phases_root_is_refused(tmp_path, capsys, manifest):
    root = tmp_path / "phase_e"
    (root / "dose_1000" / "baseline" / "gs1").mkdir(parents=True)
    (root / "dose_1000" / "baseline" / "gs1" / "wts.h5.zip").write_bytes(b"a trained job")
    (root / manifest).write_text("{}")
    before = _tree(root)
    assert main(["generate", "--output-root", str(root), *TINY]) == 1
    _one_line_error(capsys, manifest, "--output-root")
    assert _tree(root) == before


def test_generate_through_a_linked_dose_folder_is_refused(tmp_path, capsys):
    root = tmp_path / "phase_c"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "thesis.txt").write_text("years of work")
    (root / "dose_1000").symlink_to(outside, target_is_directory=True)
    assert main(["generate", "--output-root", str(root), *TINY]) == 1
    _one_line_error(capsys, str(root / "dose_1000"), "symbolic link")
    assert sorted(p.name for p in outside.iterdir()) == ["thesis.txt"]
