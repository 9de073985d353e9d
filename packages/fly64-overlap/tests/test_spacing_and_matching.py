"""--spacing-basis and --match-positions, end to end through the CLI on small, real Phase C trees."""

import json

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from fly64_data.contract import validate_dataset
from fly64_manifest import load_overlap_manifest, validate, write_json
from fly64_overlap.cli import main
from fly64_overlap.matching import select_compact
from fly64_overlap.views import SPLITS

N = 16  # patch size of the conftest trees; their probe measures D = 6 px


def _run(phase_c, out, *extra):
    return main(["--phase-c-root", str(phase_c), "--output-root", str(out), *extra])


def _xy(path):
    with np.load(path, allow_pickle=False) as npz:
        return np.column_stack([npz["xcoords"], npz["ycoords"]]), npz["scan_index"].copy()


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("fly64-overlap: error: ")
    return err[0]


def test_probe_basis_spaces_views_by_the_measured_probe_and_records_it(phase_c, tmp_path):
    out = tmp_path / "phase_d"
    assert _run(phase_c, out, "--dose", "1000", "--spacing-basis", "probe", "--min-positions", "2") == 0
    manifest = validate(out / "overlap_manifest.json", "overlap_manifest")
    by_view = {e["view"]: e for e in manifest["views"]}
    for view, fraction in (("dense", 0.7), ("sparse", 0.2)):
        entry = by_view[view]
        diameter = entry["measured_overlap"]["probe_diameter_px"]
        assert entry["spacing_basis"] == "probe" and entry["spacing_basis_px"] == pytest.approx(diameter)
        assert entry["spacing_px"] == pytest.approx((1 - fraction) * diameter)
        metrics = validate(out / entry["files"]["metrics"]["path"], "overlap_metrics")
        assert (metrics["spacing_basis"], metrics["spacing_basis_px"]) == ("probe", pytest.approx(diameter))
        for split in SPLITS:
            step = validate_dataset(out / entry["files"][split]["path"])["data_transformations"][-1]
            assert step["spacing_basis"] == "probe" and step["spacing_px"] == pytest.approx(entry["spacing_px"])
            xy, _ = _xy(out / entry["files"][split]["path"])
            assert pdist(xy).min() >= entry["spacing_px"]
    # A spacing below the probe diameter gives the overlap axis a real spread.
    dense, sparse = (by_view[v]["measured_overlap"]["train"]["nearest_neighbour_mean"] for v in ("dense", "sparse"))
    assert dense - sparse > 0.2
    assert load_overlap_manifest(out).view(1000.0, "dense").spacing_basis == "probe"


def test_patch_basis_is_the_default_and_recorded(phase_c, tmp_path):
    out = tmp_path / "phase_d"
    assert _run(phase_c, out, "--dose", "1000", "--view", "dense") == 0
    (entry,) = validate(out / "overlap_manifest.json", "overlap_manifest")["views"]
    assert (entry["spacing_basis"], entry["spacing_basis_px"]) == ("patch", N)
    assert entry["spacing_px"] == pytest.approx(0.3 * N)


def test_manifest_without_basis_loads_as_patch(phase_c, tmp_path):
    out = tmp_path / "phase_d"
    assert _run(phase_c, out, "--dose", "1000", "--view", "dense") == 0
    path = out / "overlap_manifest.json"
    doc = json.loads(path.read_text())
    doc["schema_version"] = "1.0"  # as written before the basis existed
    for entry in doc["views"]:
        for key in ("spacing_basis", "spacing_basis_px"):
            entry.pop(key)
    write_json(path, doc, "overlap_manifest")
    view = load_overlap_manifest(out).view(1000.0, "dense")
    assert (view.spacing_basis, view.matched_to) == ("patch", None)


@pytest.mark.parametrize("argv, needle", [
    (["--spacing-basis", "footprint"], "invalid choice: 'footprint'"),
    (["--match-positions", "medium"], "invalid choice: 'medium'"),
    (["--view", "dense", "--match-positions", "sparse"], "not built by this run"),
    # The conftest sparse view keeps fewer than the default 8 positions: it is skipped.
    (["--match-positions", "sparse"], "that view is skipped at dose 1000"),
])
def test_bad_basis_or_match_is_a_usage_error_and_writes_nothing(phase_c, tmp_path, capsys, argv, needle):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        _run(phase_c, out, *argv)
    assert exc.value.code == 2
    assert needle in _one_error_line(capsys)
    assert not out.exists()


def test_match_to_a_skipped_view_keeps_an_earlier_output(phase_c, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(phase_c, out, "--dose", "1000") == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(SystemExit):
        _run(phase_c, out, "--dose", "1000", "--match-positions", "sparse")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_match_positions_writes_equal_size_controls_that_keep_their_overlap(phase_c, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    out = tmp_path / "phase_d"
    assert _run(phase_c, out, "--dose", "1000", "--min-positions", "2", "--match-positions", "sparse") == 0
    manifest = validate(out / "overlap_manifest.json", "overlap_manifest")
    by_view = {e["view"]: e for e in manifest["views"]}
    assert list(by_view) == ["dense", "sparse", "baseline_matched", "dense_matched"]
    sparse = by_view["sparse"]
    for name, source in (("baseline_matched", "baseline"), ("dense_matched", "dense")):
        entry = by_view[name]
        assert entry["status"] == "ok" and (entry["matched_to"], entry["matched_from"]) == ("sparse", source)
        assert entry["directory"] == f"dose_1000/{name}"
        validate(out / entry["files"]["metrics"]["path"], "overlap_metrics")
        for split in SPLITS:
            assert entry["counts"][split]["kept"] == sparse["counts"][split]["kept"]
            xy, index = _xy(out / entry["files"][split]["path"])
            assert len(index) == sparse["counts"][split]["kept"]
            parent = (phase_c / "dose_1000" / f"patched_{split}.npz" if source == "baseline"
                      else out / by_view[source]["files"][split]["path"])
            assert set(index) <= set(_xy(parent)[1])  # thinned from its source, nothing new
            steps = validate_dataset(out / entry["files"][split]["path"])["data_transformations"]
            assert steps[-1]["step"] == "match_positions" and steps[-1]["matched_to"] == "sparse"
    # Thinning compactly keeps the source's spacing, hence its overlap, not the reference's.
    dense_matched = by_view["dense_matched"]
    assert dense_matched["spacing_px"] == by_view["dense"]["spacing_px"]
    assert dense_matched["measured_overlap"]["train"]["min_pair_distance_px"] < sparse["spacing_px"]
    assert (dense_matched["measured_overlap"]["train"]["nearest_neighbour_mean"]
            > sparse["measured_overlap"]["train"]["nearest_neighbour_mean"])
    assert by_view["baseline_matched"]["spacing_px"] is None
    typed = load_overlap_manifest(out).view(1000.0, "baseline_matched")
    assert (typed.matched_to, typed.matched_from, typed.spacing_basis) == ("sparse", "baseline", None)

    # Deterministic: the same command gives the same bytes.
    again = tmp_path / "again"
    assert _run(phase_c, again, "--dose", "1000", "--min-positions", "2", "--match-positions", "sparse") == 0
    for path in out.rglob("*"):
        if path.is_file():
            assert path.read_bytes() == (again / path.relative_to(out)).read_bytes(), path

    # A later run of the dose without matching removes the controls it would leave stale.
    assert _run(phase_c, out, "--dose", "1000", "--min-positions", "2") == 0
    assert [e["view"] for e in validate(out / "overlap_manifest.json", "overlap_manifest")["views"]] == [
        "dense", "sparse"]
    assert not (out / "dose_1000" / "dense_matched").exists()


def test_a_source_smaller_than_the_reference_is_a_recorded_skip(phase_c, tmp_path):
    out = tmp_path / "phase_d"
    assert _run(phase_c, out, "--dose", "1000", "--min-positions", "2", "--match-positions", "dense") == 0
    manifest = validate(out / "overlap_manifest.json", "overlap_manifest")
    by_view = {e["view"]: e for e in manifest["views"]}
    assert by_view["baseline_matched"]["status"] == "ok"
    skipped = by_view["sparse_matched"]
    assert skipped["status"] == "skipped" and "fewer than the" in skipped["reason"]
    assert {"dose": 1000.0, "view": "sparse_matched", "reason": skipped["reason"]} in manifest["skipped_views"]
    assert not (out / "dose_1000" / "sparse_matched").exists()


def test_select_compact_keeps_the_nearest_positions_deterministically():
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 100, 500), rng.uniform(0, 100, 500)
    mask = select_compact(x, y, 40, seed=456)
    assert mask.sum() == 40
    np.testing.assert_array_equal(mask, select_compact(x, y, 40, seed=456))
    # Everything kept lies no farther from the kept set's anchor than anything left out.
    anchor = np.argmin(np.hypot(x - x.mean(), y - y.mean()))
    d = np.hypot(x - x[anchor], y - y[anchor])
    assert mask[anchor] and d[mask].max() <= d[~mask].min()
    assert select_compact(x, y, 0, seed=1).sum() == 0
    with pytest.raises(ValueError, match="cannot keep 501 of 500"):
        select_compact(x, y, 501, seed=1)

