"""Hostile training NPZ files: refused in one line, never written outside the cache, never allocated blindly.

Standing regression suite for issue #11 (cases 2, 6 and 8): every case builds its own bad input.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from fly64_data.contract import ContractError
from fly64_train.backends.torch.train import train_job
from fly64_train.data.reader import open_dataset

TIB = 2**40


def _arrays(npz_path) -> dict[str, np.ndarray]:
    with np.load(npz_path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


def _write_zip(path, members: dict[str, bytes], compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _files_under(root):
    return {p for p in root.rglob("*") if p.is_file()}


def test_member_names_never_become_paths(tmp_path, tiny_npz, make_config):
    deep = tmp_path / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    members = {f"{k}.npy": _npy_bytes(v) for k, v in _arrays(tiny_npz).items()}
    members["./../../../../x.npy"] = _npy_bytes(np.arange(10.0))
    path = _write_zip(deep / "train.npz", members, zipfile.ZIP_DEFLATED)
    before = _files_under(tmp_path)
    job_dir = tmp_path / "job"

    result = train_job(make_config(path, job_dir, max_epochs=1, logger="none", limit_train_batches=1))

    assert result.epochs_completed == 1
    new = _files_under(tmp_path) - before
    caches = list(deep.glob(".train.npz.*.cache"))
    assert len(caches) == 1
    outside = [p for p in new if not (p.is_relative_to(caches[0]) or p.is_relative_to(job_dir))]
    assert outside == []
    assert not list(tmp_path.rglob("x.npy"))
    cached = sorted(p.name for p in caches[0].iterdir())
    assert "x.npy" not in cached and "diffraction.npy" in cached


def _with_huge_header(tiny_npz, key: str, shape: tuple[int, ...], dtype: str) -> dict[str, bytes]:
    members = {f"{k}.npy": _npy_bytes(v) for k, v in _arrays(tiny_npz).items()}
    buf = io.BytesIO()
    np.lib.format.write_array_header_2_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    members[f"{key}.npy"] = buf.getvalue() + b"\0" * 64  # a header, and nearly no data
    return members


@pytest.mark.parametrize("key, shape, dtype", [
    ("objectGuess", (2**20, 2**20), "<c8"),         # 8 TiB, read whole
    ("diffraction", (65, 2**18, 2**18), "<f4"),     # 17 TiB (n = 65 as the other members), read by rows
])
@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"])
def test_huge_declared_shape_is_refused_from_the_header(tmp_path, tiny_npz, make_config, key, shape, dtype,
                                                        compression):
    assert int(np.prod(shape)) * np.dtype(dtype).itemsize > 8 * TIB - 1
    path = _write_zip(tmp_path / "huge.npz", _with_huge_header(tiny_npz, key, shape, dtype), compression)
    job_dir = tmp_path / "job"
    with pytest.raises(ContractError) as err:
        train_job(make_config(path, job_dir, max_epochs=1))
    message = str(err.value)
    assert str(path) in message and repr(key) in message and str(shape) in message
    assert "\n" not in message
    assert not job_dir.exists()


def test_zero_patterns_is_refused_naming_the_file(tmp_path, tiny_npz, make_config):
    arrays = _arrays(tiny_npz)
    for key in ("diffraction", "Y", "xcoords", "ycoords", "scan_index"):
        arrays[key] = arrays[key][:0]
    path = tmp_path / "empty.npz"
    np.savez(path, **arrays)
    job_dir = tmp_path / "job"
    with pytest.raises(ContractError, match="n = 0") as err:
        train_job(make_config(path, job_dir, max_epochs=1))
    assert str(path) in str(err.value) and "'diffraction'" in str(err.value) and "\n" not in str(err.value)
    assert not job_dir.exists()
    with pytest.raises(ContractError, match="empty.npz"):
        open_dataset(path)
