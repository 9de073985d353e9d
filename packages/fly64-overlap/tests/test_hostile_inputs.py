"""Hostile inputs to fly64-overlap: refused in one line naming the file, the output root left as it was.

Each test builds its bad Phase C input itself from the small real tree of
``conftest.build_phase_c``; a tampered data file gets its new sha256 recorded in
``run_manifest.json``, so the refusal comes from reading the file, not from the hash check.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fly64_data.contract import sha256_file
from fly64_manifest import read_json, write_json
from fly64_overlap.cli import build_parser, main

DEEP = '{"a":' * 100_000 + "1" + "}" * 100_000
HUGE_SHAPE = (1 << 20, 1 << 20)  # complex64: 8 TiB


def _run(phase_c: Path, out: Path, *extra: str) -> int:
    return main(["--phase-c-root", str(phase_c), "--output-root", str(out), *extra])


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err, err
    assert "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def _replace_split(phase_c: Path, dose: int, split: str, write) -> Path:
    """Overwrite one Phase C file with ``write(path)`` and record its new digest and size."""
    path = phase_c / f"dose_{dose}" / f"patched_{split}.npz"
    write(path)
    manifest_path = phase_c / "run_manifest.json"
    manifest = read_json(manifest_path)
    for record in manifest["doses"]:
        if record["directory"] == f"dose_{dose}":
            record["files"][split].update(sha256=sha256_file(path), size_bytes=path.stat().st_size)
    write_json(manifest_path, manifest, "run_manifest")
    return path


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _write_members(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_deep_run_manifest_is_one_line(phase_c, tmp_path, capsys):
    (phase_c / "run_manifest.json").write_text(DEEP)
    assert _run(phase_c, tmp_path / "d") == 1
    _one_line_error(capsys, "run_manifest.json", "nested")
    assert not (tmp_path / "d").exists()


def test_phase_c_file_with_no_positions_is_one_line(phase_c, tmp_path, capsys):
    def empty(path: Path) -> None:
        members = _members(path)
        with np.load(path) as npz:
            meta = str(npz["_metadata"])
            big_n = npz["probeGuess"].shape[0]
        buf = {}
        for key, arr in (("diffraction", np.zeros((0, big_n, big_n), np.float32)),
                         ("Y", np.zeros((0, big_n, big_n), np.complex64)), ("xcoords", np.zeros(0)),
                         ("ycoords", np.zeros(0)), ("scan_index", np.zeros(0, np.int64)),
                         ("_metadata", np.array(meta))):
            out = io.BytesIO()
            np.lib.format.write_array(out, arr)
            buf[f"{key}.npy"] = out.getvalue()
        _write_members(path, {**members, **buf})

    path = _replace_split(phase_c, 1000, "train", empty)
    assert _run(phase_c, tmp_path / "d") == 1
    _one_line_error(capsys, str(path), "'diffraction'", "n = 0")


def test_phase_c_file_declaring_a_huge_shape_is_refused_from_the_header(phase_c, tmp_path, capsys):
    def huge(path: Path) -> None:
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": "<c8", "fortran_order": False, "shape": HUGE_SHAPE})
        _write_members(path, {**_members(path), "Y.npy": buf.getvalue() + b"\0" * 64})

    path = _replace_split(phase_c, 1000, "train", huge)
    assert _run(phase_c, tmp_path / "d") == 1
    _one_line_error(capsys, str(path), "'Y'", str(HUGE_SHAPE))


def test_phase_c_file_with_bad_crc_is_one_line(phase_c, tmp_path, capsys):
    def corrupt(path: Path) -> None:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("diffraction.npy")
        raw = bytearray(path.read_bytes())
        raw[info.header_offset + 200 + info.file_size // 2] ^= 0xFF
        path.write_bytes(bytes(raw))

    path = _replace_split(phase_c, 1000, "test", corrupt)
    assert _run(phase_c, tmp_path / "d") == 1
    _one_line_error(capsys, str(path), "'diffraction'")


@pytest.mark.parametrize("dose", ["inf", "nan", "-1", "0", "1e400"])
def test_dose_that_is_not_a_positive_finite_number_is_a_usage_error(phase_c, tmp_path, capsys, dose):
    with pytest.raises(SystemExit) as info:
        _run(phase_c, tmp_path / "d", f"--dose={dose}")
    assert info.value.code == 2
    _one_line_error(capsys, "--dose", dose)
    assert not (tmp_path / "d").exists()


def test_repeated_dose_and_view_flags_accumulate(phase_c, tmp_path):
    parse = build_parser().parse_args
    base = ["--phase-c-root", "c", "--output-root", "d"]
    split = parse([*base, "--dose", "1000", "--dose", "10000", "--view", "dense", "--view", "sparse"])
    joined = parse([*base, "--dose", "1000", "10000", "--view", "dense", "sparse"])
    assert (split.doses, split.views) == (joined.doses, joined.views) == ([1000.0, 10000.0], ["dense", "sparse"])
    assert _run(phase_c, tmp_path / "d", "--dose", "1000", "--dose", "10000", "--view", "dense") == 0
    entries = read_json(tmp_path / "d" / "overlap_manifest.json")["views"]
    assert sorted((e["dose"], e["view"]) for e in entries) == [(1000.0, "dense"), (10000.0, "dense")]


def test_stale_staging_folders_are_removed_live_ones_kept(phase_c, tmp_path):
    out = tmp_path / "d"
    code = ("import sys; from fly64_data.staging import Staging\n"
            "with Staging(sys.argv[1]) as path:\n"
            "    print(path, flush=True)\n"
            "    sys.stdin.read()\n")
    live = subprocess.Popen([sys.executable, "-c", code, str(out)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env={**os.environ})
    try:
        live_dir = Path(live.stdout.readline().strip())
        stale = out / ".staging-stale"
        (stale / "dose_1000" / "dense").mkdir(parents=True)
        assert _run(phase_c, out, "--dose", "1000") == 0
        assert not stale.exists()
        assert live_dir.is_dir()
    finally:
        live.communicate("")
    assert sorted(p.name for p in out.iterdir()) == ["dose_1000", "overlap_manifest.json"]


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs (needs root; skipped where mounting is not allowed)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_names_the_file_being_written(phase_c, tiny_disk, capsys):
    out = tiny_disk / "d"
    assert _run(phase_c, out) == 1
    err = _one_line_error(capsys, "No space left on device")
    assert ".npz" in err or ".json" in err
    assert not out.exists() or list(out.iterdir()) == []


def test_metadata_nested_too_deeply_is_one_line(phase_c, tmp_path, capsys):
    def deep_meta(path: Path) -> None:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.array("[" * 100_000))
        _write_members(path, {**_members(path), "_metadata.npy": buf.getvalue()})

    path = _replace_split(phase_c, 10000, "train", deep_meta)
    assert _run(phase_c, tmp_path / "d") == 1
    _one_line_error(capsys, str(path), "_metadata", "nested")
