"""The header-checking NPZ reader returns what np.savez wrote, and honours keys and max_bytes."""

import numpy as np
import pytest

from fly64_data import NpzError, npz_headers, read_npz


def _arrays():
    rng = np.random.default_rng(0)
    return {"a": rng.random((3, 4)).astype(np.float32), "b": np.asfortranarray(rng.random((5, 2))),
            "c": (rng.random(6) + 1j).astype(np.complex64), "d": np.array("{}"), "e": np.zeros((0, 3))}


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_round_trip_equals_numpy(tmp_path, save):
    path = tmp_path / "x.npz"
    save(path, **_arrays())
    loaded = read_npz(path)
    with np.load(path, allow_pickle=False) as ref:
        assert sorted(loaded) == sorted(ref.files)
        for key in ref.files:
            np.testing.assert_array_equal(loaded[key], ref[key])
            assert loaded[key].dtype == ref[key].dtype and loaded[key].shape == ref[key].shape
    assert loaded["b"].flags.f_contiguous and loaded["a"].flags.writeable


def test_headers_and_selected_keys(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, **_arrays())
    headers = npz_headers(path)
    assert headers["a"].shape == (3, 4) and headers["a"].nbytes == 48 and headers["b"].fortran_order
    assert list(read_npz(path, keys=["c", "a"])) == ["c", "a"]
    with pytest.raises(NpzError, match=r"missing key 'z'"):
        read_npz(path, keys=["z"])


def test_max_bytes_refuses_before_loading(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, **_arrays())
    assert read_npz(path, keys=["a"], max_bytes=48)["a"].nbytes == 48
    with pytest.raises(NpzError, match=r"key 'a': declared shape \(3, 4\)"):
        read_npz(path, keys=["a"], max_bytes=47)
