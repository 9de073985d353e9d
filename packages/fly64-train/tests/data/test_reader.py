"""Lazy NPZ access and contract checks before training."""

from __future__ import annotations

import numpy as np
import pytest

from fly64_data.contract import ContractError
from fly64_data.grouping import make_groups
from fly64_train.backends.torch.group_dataset import GroupDataset
from fly64_train.backends.torch.train import train_job
from fly64_train.data.reader import npz_members, open_dataset
from fly64_train.training.config import TrainConfig


def test_rows_read_lazily_equal_numpy(tiny_npz):
    readers = npz_members(tiny_npz)
    with np.load(tiny_npz, allow_pickle=False) as npz:
        full = npz["diffraction"]
        ycoords = npz["ycoords"]
    rows = np.array([5, 6, 7, 0, 3, 3, len(full) - 1])
    assert np.array_equal(readers["diffraction"].read_rows(rows), full[rows])
    assert np.array_equal(readers["ycoords"].read_all(), ycoords)
    info = open_dataset(tiny_npz, 2, 7)
    assert info.n == len(full) and info.patch_size == 32 and info.intensity_scale > 0


def test_compressed_npz_is_cached_once_beside_the_file(tmp_path, tiny_npz):
    with np.load(tiny_npz, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    path = tmp_path / "compressed.npz"
    np.savez_compressed(path, **arrays)
    info = open_dataset(path)
    assert np.array_equal(info.diffraction.read_rows([2, 1]), arrays["diffraction"][[2, 1]])
    caches = list(tmp_path.glob(".compressed.npz.*.cache/diffraction.npy"))
    assert len(caches) == 1


def test_group_dataset_items(tiny_npz):
    info = open_dataset(tiny_npz, 2, 7)
    groups = make_groups(info.ycoords, info.xcoords, 2, 7)
    item = GroupDataset(info.diffraction, groups)[4]
    assert item["diffraction"].shape == (4, 32, 32)
    assert item["offsets"].shape == (4, 2)


def _broken_copy(tmp_path, tiny_npz, **changes):
    with np.load(tiny_npz, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    path = tmp_path / "broken.npz"
    np.savez(path, **arrays)
    return path


def test_contract_failure_is_refused_before_training(tmp_path, tiny_npz):
    with np.load(tiny_npz) as npz:
        diff = npz["diffraction"].copy()
    diff[3, 0, 0] = -1.0
    path = _broken_copy(tmp_path, tiny_npz, diffraction=diff)
    job_dir = tmp_path / "job"
    with pytest.raises(ContractError, match=r"broken\.npz: .*'diffraction'.*negative"):
        train_job(TrainConfig(train_path=str(path), job_dir=str(job_dir), max_epochs=1))
    assert not job_dir.exists()


@pytest.mark.parametrize("change, match", [
    ({"ycoords": np.zeros(3)}, "ycoords"),
    ({"diffraction": None}, "missing key 'diffraction'"),
])
def test_bad_members_name_the_file_and_key(tmp_path, tiny_npz, change, match):
    with np.load(tiny_npz, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for key, value in change.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ContractError, match=match) as err:
        open_dataset(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_gs2_with_too_small_k_is_refused(tiny_npz):
    with pytest.raises(ContractError, match="neighbor_count"):
        open_dataset(tiny_npz, gridsize=2, neighbor_count=3)


def test_truncated_npz_is_refused(tmp_path, tiny_npz):
    data = tiny_npz.read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ContractError, match="cut.npz"):
        open_dataset(path)
