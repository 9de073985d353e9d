"""End to end through the CLI on small, real Phase C trees."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from fly64_data.contract import sha256_file, validate_dataset, write_dataset
from fly64_data.design import get_study_design
from fly64_data.grouping import make_groups
from fly64_manifest import validate, write_json
from fly64_overlap.cli import main
from fly64_overlap.metrics import disc_overlap_fraction
from fly64_overlap.views import SPLITS

N = 16  # patch size of the conftest trees
DENSE_S, SPARSE_S = 0.3 * N, 0.8 * N
PER_POSITION = ("diffraction", "Y", "xcoords", "ycoords", "scan_index")


def _load(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _run(phase_c, out, *extra):
    return main(["--phase-c-root", str(phase_c), "--output-root", str(out), *extra])


def _listing(root: Path):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_dense_views_are_valid_consistent_and_traceable(phase_c, tmp_path):
    out = tmp_path / "phase_d"
    assert _run(phase_c, out, "--view", "dense") == 0
    manifest = validate(out / "overlap_manifest.json", "overlap_manifest")
    assert [(e["dose"], e["view"], e["status"]) for e in manifest["views"]] == [
        (1000.0, "dense", "ok"), (10000.0, "dense", "ok")]
    entry = manifest["views"][0]
    for split in SPLITS:
        path = out / "dose_1000" / "dense" / f"dense_{split}.npz"
        parent_path = phase_c / "dose_1000" / f"patched_{split}.npz"
        meta = validate_dataset(path)
        data, parent = _load(path), _load(parent_path)

        # Every per-position array was filtered by the same mask: rows line up with the parent's.
        rows = np.searchsorted(parent["scan_index"], data["scan_index"])
        np.testing.assert_array_equal(parent["scan_index"][rows], data["scan_index"])
        for key in PER_POSITION:
            np.testing.assert_array_equal(data[key], parent[key][rows])
            assert data[key].shape[0] == entry["counts"][split]["kept"]
        np.testing.assert_array_equal(data["objectGuess"], parent["objectGuess"])
        np.testing.assert_array_equal(data["probeGuess"], parent["probeGuess"])
        assert pdist(np.column_stack([data["xcoords"], data["ycoords"]])).min() >= DENSE_S

        # Provenance: parent sha256 and a path that leads back to it; one appended transformation.
        (source,) = meta["sources"]
        assert source["sha256"] == sha256_file(parent_path)
        assert (path.parent / source["path"]).resolve() == parent_path.resolve()
        parent_meta = json.loads(str(parent["_metadata"]))
        assert meta["data_transformations"][:-1] == parent_meta["data_transformations"]
        step = meta["data_transformations"][-1]
        assert step["step"] == "overlap_view" and step["view"] == "dense"
        assert step["spacing_px"] == pytest.approx(DENSE_S) and step["seed"] == 456
        assert step["kept"] + step["rejected"] == parent["xcoords"].size
        assert meta["producer"]["package"] == "fly64-overlap"
        assert meta["overlap"]["kept"] == step["kept"]
        assert meta["overlap"]["probe_diameter"]["method"] == "encircled_energy"

        # Manifest file records: relative paths, real digests and sizes.
        rec = entry["files"][split]
        assert not Path(rec["path"]).is_absolute() and ".." not in rec["path"]
        assert rec["sha256"] == sha256_file(out / rec["path"])
        assert rec["size_bytes"] == (out / rec["path"]).stat().st_size
        assert entry["sources"][split]["sha256"] == source["sha256"]

    metrics = validate(out / "dose_1000" / "dense" / "dense_metrics.json", "overlap_metrics")
    train = metrics["splits"]["train"]
    assert train["kept"] == entry["counts"]["train"]["kept"]
    assert train["nearest_neighbour"]["distance_px"]["min"] >= DENSE_S
    assert 0.0 <= train["nearest_neighbour"]["mean"] <= 1.0
    assert train["group_based"]["groups_evaluated"] == train["kept"]
    # The recorded group overlap is the one of the groups Phase E trains on: the grouping rule run on the
    # written file's positions with the design's K and seed.
    design = get_study_design()
    written = _load(out / "dose_1000" / "dense" / "dense_train.npz")
    groups = make_groups(written["ycoords"], written["xcoords"], 2, design.neighbor_count, None,
                         design.rng_seeds["grouping"])
    xy = np.column_stack([written["xcoords"], written["ycoords"]])[groups.indices]
    diameter = metrics["probe_diameter"]["value_px"]
    pairwise = [disc_overlap_fraction(np.linalg.norm(xy[:, i] - xy[:, j], axis=1), diameter)
                for i in range(4) for j in range(i + 1, 4)]
    assert train["group_based"]["mean"] == pytest.approx(float(np.mean(pairwise, axis=0).mean()), rel=1e-12)
    assert metrics["probe_diameter"]["value_px"] > 0
    assert entry["measured_overlap"]["train"]["nearest_neighbour_mean"] == train["nearest_neighbour"]["mean"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_same_inputs_give_identical_bytes(phase_c, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run(phase_c, a, "--dose", "1000") == 0
    assert _run(phase_c, b, "--dose", "1000") == 0
    files = [p.relative_to(a) for p in a.rglob("*") if p.is_file()]
    assert len(files) == 4  # dense train/test/metrics + manifest (sparse is infeasible here)
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_infeasible_sparse_view_is_skipped_and_recorded(phase_c, tmp_path, capsys):
    out = tmp_path / "phase_d"
    assert _run(phase_c, out, "--dose", "1000") == 0
    manifest = validate(out / "overlap_manifest.json", "overlap_manifest")
    sparse = next(e for e in manifest["views"] if e["view"] == "sparse")
    assert sparse["status"] == "skipped" and "files" not in sparse
    assert "fewer than --min-positions 8" in sparse["reason"]
    assert sparse["counts"]["train"]["kept"] < 8
    assert manifest["skipped_count"] == 1
    assert manifest["skipped_views"] == [{"dose": 1000.0, "view": "sparse", "reason": sparse["reason"]}]
    assert not (out / "dose_1000" / "sparse").exists()  # nothing partial
    assert (out / "dose_1000" / "dense" / "dense_train.npz").is_file()
    assert "skipped dose 1000 sparse" in capsys.readouterr().out


def test_lower_min_positions_makes_sparse_feasible(phase_c, tmp_path):
    out = tmp_path / "phase_d"
    assert _run(phase_c, out, "--dose", "1000", "--view", "sparse", "--min_positions", "2") == 0
    data = _load(out / "dose_1000" / "sparse" / "sparse_train.npz")
    assert pdist(np.column_stack([data["xcoords"], data["ycoords"]])).min() >= SPARSE_S


def test_rerun_of_one_view_keeps_the_others_in_the_manifest(phase_c, tmp_path):
    out = tmp_path / "phase_d"
    assert _run(phase_c, out, "--view", "dense") == 0
    assert _run(phase_c, out, "--dose", "1000", "--view", "sparse", "--min-positions", "2") == 0
    manifest = validate(out / "overlap_manifest.json", "overlap_manifest")
    assert [(e["dose"], e["view"]) for e in manifest["views"]] == [
        (1000.0, "dense"), (1000.0, "sparse"), (10000.0, "dense")]
    assert all((out / e["files"]["train"]["path"]).is_file() for e in manifest["views"])


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("fly64-overlap: error: ")
    return err[0]


def test_missing_phase_c_root(tmp_path, capsys):
    out = tmp_path / "phase_d"
    assert _run(tmp_path / "nope", out) == 1
    assert str(tmp_path / "nope") in _one_error_line(capsys)
    assert not out.exists()


def test_file_failing_the_contract_leaves_output_untouched(phase_c, tmp_path, capsys):
    out = tmp_path / "phase_d"
    assert _run(phase_c, out, "--dose", "1000", "--view", "dense") == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # Break dose 10000's test file (float64 diffraction) and re-register it so only the contract catches it.
    bad = phase_c / "dose_10000" / "patched_test.npz"
    arrays = _load(bad)
    arrays["diffraction"] = arrays["diffraction"].astype(np.float64)
    np.savez(bad, **arrays)
    run_manifest = json.loads((phase_c / "run_manifest.json").read_text())
    run_manifest["doses"][1]["files"]["test"]["sha256"] = sha256_file(bad)
    write_json(phase_c / "run_manifest.json", run_manifest, "run_manifest")

    assert _run(phase_c, out) == 1
    line = _one_error_line(capsys)
    assert str(bad) in line and "diffraction" in line and "float32" in line
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_failed_first_run_leaves_no_output_folder(phase_c, tmp_path, capsys):
    bad = phase_c / "dose_1000" / "patched_train.npz"
    arrays = _load(bad)
    arrays.pop("Y")
    np.savez(bad, **arrays)
    run_manifest = json.loads((phase_c / "run_manifest.json").read_text())
    run_manifest["doses"][0]["files"]["train"]["sha256"] = sha256_file(bad)
    write_json(phase_c / "run_manifest.json", run_manifest, "run_manifest")
    out = tmp_path / "new" / "phase_d"
    assert _run(phase_c, out) == 1
    assert "missing key 'Y'" in _one_error_line(capsys)
    assert not out.exists()


def test_file_changed_after_phase_c_is_refused(phase_c, tmp_path, capsys):
    train = phase_c / "dose_1000" / "patched_train.npz"
    arrays = _load(train)
    meta = json.loads(str(arrays.pop("_metadata")))
    arrays["xcoords"] = arrays["xcoords"] + 0.5
    write_dataset(train, arrays, meta)
    assert _run(phase_c, tmp_path / "out") == 1
    assert "sha256 differs" in _one_error_line(capsys)


@pytest.mark.parametrize("argv, needle", [
    (["--view", "medium"], "invalid choice: 'medium'"),
    (["--min-positions", "0"], "must be at least 1"),
    (["--dose", "abc"], "not a number"),
])
def test_usage_errors_exit_2_with_one_line(phase_c, tmp_path, capsys, argv, needle):
    with pytest.raises(SystemExit) as exc:
        _run(phase_c, tmp_path / "out", *argv)
    assert exc.value.code == 2
    assert needle in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_unknown_dose_is_a_data_error(phase_c, tmp_path, capsys):
    assert _run(phase_c, tmp_path / "out", "--dose", "5000") == 1
    line = _one_error_line(capsys)
    assert "run_manifest.json" in line and "dose 5000" in line and "1000, 10000" in line


def test_python_dash_m_entry_point(phase_c, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "fly64_overlap", "--phase_c_root", str(phase_c),
                           "--output_root", str(out), "--dose", "1000", "--view", "dense"],
                          capture_output=True, text=True, env={**os.environ, "SOURCE_DATE_EPOCH": "0"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal
    assert (out / "dose_1000" / "dense" / "dense_test.npz").is_file()
