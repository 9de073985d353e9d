import json

import numpy as np
import pytest

from fly64_data.contract import (
    METADATA_FIELDS,
    ContractError,
    read_metadata,
    validate_dataset,
    write_dataset,
)

N = 8


def _dataset(n=5):
    rng = np.random.default_rng(0)
    arrays = {
        "diffraction": rng.random((n, N, N)).astype(np.float32),
        "Y": (rng.random((n, N, N)) + 1j).astype(np.complex64),
        "objectGuess": np.ones((20, 24), np.complex64),
        "probeGuess": np.ones((N, N), np.complex64),
        "xcoords": rng.random(n) + 8,
        "ycoords": rng.random(n) + 8,
        "scan_index": np.arange(n, dtype=np.int64),
    }
    meta = {field: None for field in METADATA_FIELDS}
    meta.update(schema_version="1.0", data_transformations=[], sources=[], seeds={})
    return arrays, meta


def _with_meta(arrays, meta):
    return {**arrays, "_metadata": np.array(json.dumps(meta))}


def test_valid_mapping_returns_metadata():
    arrays, meta = _dataset()
    assert validate_dataset(_with_meta(arrays, meta))["schema_version"] == "1.0"


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda a: a.pop("Y"), r"missing key 'Y'"),
        (lambda a: a.update(diffraction=a["diffraction"].astype(np.float64)), r"'diffraction'.*float32.*float64"),
        (lambda a: a.update(diffraction=(a["diffraction"] * 10).astype(np.int32)), r"'diffraction'.*int32"),
        (lambda a: a.update(Y=a["Y"].astype(np.complex128)), r"'Y'.*complex64.*complex128"),
        (lambda a: a.update(probeGuess=a["probeGuess"].real.copy()), r"'probeGuess'.*complex64.*float32"),
        (lambda a: a.update(probeGuess=np.ones((N + 1, N + 1), np.complex64)), r"'probeGuess'.*shape"),
        (lambda a: a.update(xcoords=a["xcoords"][:-1]), r"'xcoords'.*\(5,\).*\(4,\)"),
        (lambda a: a.update(scan_index=a["scan_index"].astype(np.int32)), r"'scan_index'.*int64"),
        (lambda a: a["diffraction"].__setitem__((0, 0, 0), np.nan), r"'diffraction'.*non-finite"),
        (lambda a: a["ycoords"].__setitem__(1, np.inf), r"'ycoords'.*non-finite"),
        (lambda a: a["diffraction"].__setitem__((0, 0, 0), -1.0), r"'diffraction'.*negative"),
    ],
)
def test_contract_violations_name_the_key(mutate, pattern):
    arrays, meta = _dataset()
    mutate(arrays)
    with pytest.raises(ContractError, match=pattern):
        validate_dataset(_with_meta(arrays, meta))


def test_gridsize_needs_enough_neighbours():
    arrays, meta = _dataset()
    data = _with_meta(arrays, meta)
    validate_dataset(data, gridsize=2, neighbor_count=7)
    with pytest.raises(ContractError, match="neighbor_count >= 4"):
        validate_dataset(data, gridsize=2, neighbor_count=3)


def test_metadata_must_be_json_with_required_fields():
    arrays, meta = _dataset()
    with pytest.raises(ContractError, match="_metadata.*not valid JSON"):
        validate_dataset({**arrays, "_metadata": np.array("{oops")})
    meta.pop("intensity_scale")
    with pytest.raises(ContractError, match="_metadata.*intensity_scale"):
        validate_dataset(_with_meta(arrays, meta))


def test_write_then_validate_path_without_pickle(tmp_path):
    arrays, meta = _dataset()
    path = write_dataset(tmp_path / "d.npz", arrays, meta)
    with np.load(path, allow_pickle=False) as npz:
        assert npz["_metadata"].dtype.kind == "U" and npz["_metadata"].shape == ()
    assert validate_dataset(path)["schema_version"] == "1.0"
    assert read_metadata(path)["schema_version"] == "1.0"


def test_write_refuses_invalid_data_and_leaves_nothing(tmp_path):
    arrays, meta = _dataset()
    arrays["diffraction"][0, 0, 0] = np.nan
    with pytest.raises(ContractError, match=r"d\.npz.*refusing to write"):
        write_dataset(tmp_path / "d.npz", arrays, meta)
    assert list(tmp_path.iterdir()) == []


def test_path_errors_name_the_file(tmp_path):
    arrays, meta = _dataset()
    good = write_dataset(tmp_path / "good.npz", arrays, meta)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ContractError, match=r"truncated\.npz"):
        validate_dataset(truncated)
    with pytest.raises(ContractError, match=r"missing\.npz: file not found"):
        validate_dataset(tmp_path / "missing.npz")


def test_pickled_object_arrays_are_refused(tmp_path):
    arrays, meta = _dataset()
    path = tmp_path / "pickled.npz"
    np.savez(path, **_with_meta(arrays, meta), extra=np.array([{"a": 1}], dtype=object))
    payload = dict(_with_meta(arrays, meta))
    payload["_metadata"] = np.array([json.dumps(meta)], dtype=object)
    np.savez(path, **payload)
    with pytest.raises(ContractError, match=r"pickled\.npz"):
        validate_dataset(path)
