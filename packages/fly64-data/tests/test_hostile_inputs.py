"""Hostile inputs to fly64-data: each is refused in one line naming the file, nothing is left half written.

Every test builds its bad input itself (tiny NPZs, a tiny tmpfs, real processes).
The general property of the contract validator (any malformed mapping gives a
ContractError, never another exception) is checked with hypothesis.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fly64_data.cli import build_parser, main
from fly64_data.contract import ContractError, metadata_array, validate_dataset
from fly64_data.sample import default_sample, save_base_npz

SMALL = ["--patch-size", "32", "--object-size", "160", "--scan-step", "12"]
HUGE_SHAPE = (1 << 20, 1 << 20)  # complex64: 8 TiB


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err, err
    assert "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def _base_npz(path: Path, compressed: bool = False) -> Path:
    sample = default_sample(32, 160, 12.0, 42)
    if compressed:
        np.savez_compressed(path, objectGuess=sample.object, probeGuess=sample.probe)
        return path
    return save_base_npz(sample, path)


def _member_data_offset(path: Path, name: str) -> tuple[int, zipfile.ZipInfo]:
    """Byte offset of a member's (possibly compressed) data inside the archive."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    raw = path.read_bytes()
    start = info.header_offset
    name_len = int.from_bytes(raw[start + 26:start + 28], "little")
    extra_len = int.from_bytes(raw[start + 28:start + 30], "little")
    return start + 30 + name_len + extra_len, info


def _npy_header(shape: tuple[int, ...], dtype=np.complex64) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=array.dtype.hasobject)
    return buf.getvalue()


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _probe_npy() -> bytes:
    return _npy(default_sample(32, 160, 12.0, 42).probe)


def _generate_from(base: Path, root: Path) -> int:
    return main(["generate", "--output-root", str(root), "--dose", "1000", "--base-npz", str(base),
                 "--patch-size", "32"])


# --------------------------------------------------------------------------- n = 0


def _empty_dataset(path: Path, n_big: int = 8) -> Path:
    meta = {"schema_version": "1.0", "created": "2026-01-01T00:00:00Z", "producer": {"package": "t"},
            "dose": 1000.0, "measured_mean_counts": 0.0, "intensity_scale": 1.0, "N": n_big, "seeds": {},
            "sources": [], "data_transformations": []}
    np.savez(path, diffraction=np.zeros((0, n_big, n_big), np.float32), Y=np.zeros((0, n_big, n_big), np.complex64),
             objectGuess=np.ones((32, 32), np.complex64), probeGuess=np.ones((n_big, n_big), np.complex64),
             xcoords=np.zeros(0), ycoords=np.zeros(0), scan_index=np.zeros(0, np.int64),
             _metadata=metadata_array(meta))
    return path


def test_contract_refuses_a_dataset_with_no_positions(tmp_path, capsys):
    path = _empty_dataset(tmp_path / "empty.npz")
    with pytest.raises(ContractError, match=r"n = 0"):
        validate_dataset(path)
    assert main(["validate", str(path)]) == 1
    _one_line_error(capsys, str(path), "'diffraction'", "n = 0")


# --------------------------------------------------------------------------- damaged NPZ files


def test_base_npz_with_bad_crc_is_one_line(tmp_path, capsys):
    base = _base_npz(tmp_path / "base.npz")
    offset, info = _member_data_offset(base, "objectGuess.npy")
    raw = bytearray(base.read_bytes())
    raw[offset + info.file_size // 2] ^= 0xFF  # inside the array data, past the .npy header
    base.write_bytes(bytes(raw))
    assert _generate_from(base, tmp_path / "out") == 1
    _one_line_error(capsys, str(base), "objectGuess")
    assert not (tmp_path / "out").exists()


def test_base_npz_with_corrupt_deflate_stream_is_one_line(tmp_path, capsys):
    base = _base_npz(tmp_path / "base.npz", compressed=True)
    offset, info = _member_data_offset(base, "objectGuess.npy")
    raw = bytearray(base.read_bytes())
    middle = offset + info.compress_size // 2
    raw[middle:middle + 64] = b"\xff" * 64
    base.write_bytes(bytes(raw))
    assert _generate_from(base, tmp_path / "out") == 1
    _one_line_error(capsys, str(base), "objectGuess")


def test_truncated_base_npz_is_one_line(tmp_path, capsys):
    base = _base_npz(tmp_path / "base.npz")
    base.write_bytes(base.read_bytes()[: base.stat().st_size // 2])
    assert _generate_from(base, tmp_path / "out") == 1
    _one_line_error(capsys, str(base))


def test_huge_declared_shape_is_refused_from_the_header(tmp_path, capsys):
    base = _zip(tmp_path / "base.npz", {"objectGuess.npy": _npy_header(HUGE_SHAPE) + b"\0" * 64,
                                         "probeGuess.npy": _probe_npy()})
    assert _generate_from(base, tmp_path / "out") == 1
    _one_line_error(capsys, str(base), "objectGuess", str(HUGE_SHAPE))


def test_object_dtype_member_is_refused_without_unpickling(tmp_path, capsys):
    base = _zip(tmp_path / "base.npz", {"objectGuess.npy": _npy(np.array([None, 1], dtype=object)),
                                         "probeGuess.npy": _probe_npy()})
    assert _generate_from(base, tmp_path / "out") == 1
    _one_line_error(capsys, str(base), "objectGuess", "object")


def test_member_name_that_is_a_path_is_refused(tmp_path, capsys):
    good = _base_npz(tmp_path / "good.npz")
    with zipfile.ZipFile(good) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    members["./../../../../x.npy"] = _npy(np.zeros(3))
    base = _zip(tmp_path / "base.npz", members)
    assert _generate_from(base, tmp_path / "out") == 1
    _one_line_error(capsys, str(base), "../x.npy")
    assert not list(tmp_path.parent.rglob("x.npy"))


# --------------------------------------------------------------------------- command line


@pytest.mark.parametrize("dose", ["inf", "nan", "-1", "0", "-inf", "1e400"])
def test_dose_that_is_not_a_positive_finite_number_is_a_usage_error(tmp_path, capsys, dose):
    with pytest.raises(SystemExit) as info:
        main(["generate", "--output-root", str(tmp_path / "out"), f"--dose={dose}", *SMALL])
    assert info.value.code == 2
    _one_line_error(capsys, "--dose", dose)
    assert not (tmp_path / "out").exists()


def test_repeated_dose_flags_accumulate(tmp_path):
    parse = build_parser().parse_args
    base = ["generate", "--output-root", "x"]
    assert parse([*base, "--dose", "1000", "--dose", "100000"]).dose == [1000.0, 100000.0]
    assert parse([*base, "--dose", "1000", "--dose", "100000"]).dose == parse([*base, "--dose", "1000", "100000"]).dose
    root = tmp_path / "c"
    assert main(["generate", "--output-root", str(root), "--dose", "1000", "--dose", "10000", *SMALL]) == 0
    doses = [r["dose"] for r in json.loads((root / "run_manifest.json").read_text())["doses"]]
    assert doses == [1000.0, 10000.0]


# --------------------------------------------------------------------------- staging folders of dead runs


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _hold_staging(root: Path) -> subprocess.Popen:
    """A real process that opens a staging folder in ``root`` and waits; prints the folder's path."""
    code = ("import sys; from fly64_data.staging import Staging\n"
            "with Staging(sys.argv[1]) as path:\n"
            "    (path / 'partial.npz').write_bytes(b'x' * 1000)\n"
            "    print(path, flush=True)\n"
            "    sys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(root)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env={**os.environ})
    return proc


def test_staging_folders_of_dead_runs_are_removed_live_ones_kept(tmp_path):
    from fly64_data.staging import LOCK_NAME

    root = tmp_path / "c"
    root.mkdir()
    live = _hold_staging(root)
    try:
        live_dir = Path(live.stdout.readline().strip())
        killed = _hold_staging(root)  # a real run killed with SIGKILL while staging
        killed_dir = Path(killed.stdout.readline().strip())
        killed.kill()
        killed.wait()
        dead = root / ".staging-dead"  # a folder whose recorded owner pid is dead
        dead.mkdir()
        (dead / LOCK_NAME).write_text(f"{_dead_pid()}\n")
        (dead / "partial.npz").write_bytes(b"x" * 1000)
        unlocked = root / ".staging-nolock"  # a run killed before it could lock, or an older version's
        unlocked.mkdir()
        assert killed_dir.is_dir() and live_dir.is_dir()
        assert main(["generate", "--output-root", str(root), "--dose", "1000", *SMALL]) == 0
        assert not dead.exists() and not unlocked.exists() and not killed_dir.exists()
        assert (live_dir / "partial.npz").is_file()
        assert sorted(p.name for p in root.iterdir()) == sorted(["dose_1000", "run_manifest.json", live_dir.name])
    finally:
        live.communicate("")
    assert not live_dir.exists()  # the live run cleaned up after itself


def test_stale_staging_in_a_fresh_root_is_removed_on_the_first_run(tmp_path):
    root = tmp_path / "c"
    (root / ".staging-abc").mkdir(parents=True)
    (root / ".staging-abc" / "dose_1000").mkdir()
    assert main(["generate", "--output-root", str(root), "--dose", "1000", *SMALL]) == 0
    assert not (root / ".staging-abc").exists()


# --------------------------------------------------------------------------- full disk


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs (needs root; skipped where mounting is not allowed)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_names_the_file_being_written(tiny_disk, capsys):
    root = tiny_disk / "c"
    assert main(["generate", "--output-root", str(root), "--dose", "1000", *SMALL]) == 1
    err = _one_line_error(capsys, "No space left on device", "patched_")
    assert ".npz" in err
    assert list(root.iterdir()) == []  # no partial output, no staging folder


# --------------------------------------------------------------------------- contract property


def _valid_mapping(n: int = 3, big_n: int = 4) -> dict[str, np.ndarray]:
    meta = {"schema_version": "1.0", "created": "c", "producer": {}, "dose": 1.0, "measured_mean_counts": 1.0,
            "intensity_scale": 1.0, "N": big_n, "seeds": {}, "sources": [], "data_transformations": []}
    return {"diffraction": np.ones((n, big_n, big_n), np.float32), "Y": np.ones((n, big_n, big_n), np.complex64),
            "objectGuess": np.ones((8, 8), np.complex64), "probeGuess": np.ones((big_n, big_n), np.complex64),
            "xcoords": np.zeros(n), "ycoords": np.zeros(n), "scan_index": np.arange(n, dtype=np.int64),
            "_metadata": metadata_array(meta)}


_JUNK = st.one_of(
    hnp.arrays(hnp.scalar_dtypes(), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)),
    st.none(), st.integers(), st.text(max_size=10), st.lists(st.lists(st.integers(), max_size=3), max_size=3),
    st.sampled_from(["[" * 100_000, '{"a":' * 100_000, "{}", "[]", "null", '{"dose": NaN}']).map(np.array),
    st.text(max_size=40).map(np.array),
)


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(_valid_mapping())), st.one_of(st.just("drop"), _JUNK),
                       min_size=1, max_size=4))
@example({"_metadata": np.array("[" * 100_000)})
@example({"diffraction": np.zeros((0, 4, 4), np.float32)})
def test_validator_refuses_malformed_mappings_only_with_contract_errors(changes):
    data = _valid_mapping()
    for key, value in changes.items():
        if isinstance(value, str) and value == "drop":
            del data[key]
        else:
            data[key] = value
    try:
        validate_dataset(data)
    except ContractError as exc:
        assert "\n" not in str(exc)
