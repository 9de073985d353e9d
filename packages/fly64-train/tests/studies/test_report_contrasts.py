"""The report's "Overlap or data?" pairs: which cells the equal-positions controls let it compare."""

from __future__ import annotations

from fly64_train.studies.job_context import JobContext
from fly64_train.studies.report import _markdown
from fly64_train.studies.report_contrasts import contrast_table, contrasts
from fly64_train.studies.report_rows import ReportRow


def _row(view: str, gridsize: int, positions: int, nn: float, ssim: float, info: float, seed: int | None = None,
         floor: float | None = None, **ctx) -> ReportRow:
    scores = {"ssim": ssim, "pearson": ssim}
    metrics = {"amplitude": scores, "phase": scores, "information": {"info": info}}
    if floor is not None:
        floors = {"ssim": floor, "pearson": floor}
        metrics["floor"] = {"amplitude": floors, "phase": floors}
    return ReportRow(1000.0, view, gridsize, "success", metrics, seed=seed, groups=positions,
                     context=JobContext(train_positions=positions, test_positions=positions, nn_overlap=nn, **ctx))


def _study() -> list[ReportRow]:
    """The default study's cells under the probe basis with controls matched to sparse."""
    return [
        _row("baseline", 1, 1302, 0.52, 0.80, 0.60),
        _row("dense", 2, 1302, 0.52, 0.78, 0.55, spacing_basis="probe"),
        _row("sparse", 2, 248, 0.06, 0.60, 0.30, spacing_basis="probe"),
        _row("dense_matched", 2, 248, 0.517, 0.70, 0.45, seed=0, matched_to="sparse", matched_from="dense"),
        _row("dense_matched", 2, 248, 0.517, 0.72, 0.47, seed=1, matched_to="sparse", matched_from="dense"),
        _row("baseline_matched", 1, 248, 0.517, 0.68, 0.40, matched_to="sparse", matched_from="baseline"),
    ]


def test_each_control_isolates_overlap_or_data_and_two_controls_isolate_gridsize():
    found = {(c.kind, c.a.first.view, c.b.first.view): c.differs() for c in contrasts(_study())}
    assert found == {
        ("overlap", "sparse", "dense_matched"): ["overlap"],
        ("positions", "dense", "dense_matched"): ["positions"],
        ("overlap", "sparse", "baseline_matched"): ["overlap", "gridsize"],
        ("positions", "baseline", "baseline_matched"): ["positions"],
        ("gridsize", "dense_matched", "baseline_matched"): ["gridsize"],
    }


def test_the_contrast_table_puts_positions_groups_and_overlap_beside_the_score_differences():
    lines = contrast_table(_study()).splitlines()
    header = [h.strip() for h in lines[0].strip("|").split("|")]
    assert header[:8] == ["dose", "A", "B", "isolates", "differs in", "positions A / B", "groups A / B",
                          "NN overlap A / B"]
    row = next(line for line in lines if "| sparse (gs2) |" in line and "dense_matched" in line)
    named = dict(zip(header, (c.strip() for c in row.strip("|").split("|")), strict=True))
    assert named["positions A / B"] == "248 / 248" and named["NN overlap A / B"] == "0.060 / 0.517"
    assert named["B"] == "dense_matched (gs2), matched to sparse: 248 positions"
    # A - B of the means over the control's two seeds; no floor recorded, so no image-score difference.
    assert named["Δ info"] == f"{0.30 - 0.46:+.3f}" and named["Δ amp SSIM above floor"] == "-"
    assert "## Overlap or data?" in _markdown(_study(), [])


def test_image_scores_are_compared_above_each_cells_own_floor():
    """A control tests on a smaller region, where a flat object scores lower: raw SSIM would flatter the view."""
    rows = [_row("sparse", 2, 248, 0.06, 0.72, 0.80, floor=0.67, spacing_basis="probe"),
            _row("dense_matched", 2, 248, 0.517, 0.60, 0.71, floor=0.51, matched_to="sparse",
                 matched_from="dense")]
    lines = contrast_table(rows).splitlines()
    header = [h.strip() for h in lines[0].strip("|").split("|")]
    named = dict(zip(header, (c.strip() for c in lines[2].strip("|").split("|")), strict=True))
    # Raw, sparse leads by 0.12; above the floors (0.05 against 0.09), the overlapping control leads.
    assert named["Δ amp SSIM above floor"] == f"{(0.72 - 0.67) - (0.60 - 0.51):+.3f}" == "-0.040"
    assert named["Δ phase SSIM above floor"] == "-0.040"
    assert named["Δ info"] == f"{0.80 - 0.71:+.3f}"


def test_a_study_without_controls_has_no_contrast_section():
    rows = [r for r in _study() if not r.context.matched_to]
    assert contrasts(rows) == [] and contrast_table(rows) == ""
    assert "Overlap or data?" not in _markdown(rows, [])


def test_an_information_score_above_one_is_named_in_the_notes():
    rows = _study()
    assert "above 1" not in _markdown(rows, [])
    rows.append(_row("sparse", 2, 248, 0.06, 0.6, 1.004, seed=3, spacing_basis="probe"))
    note = next(line for line in _markdown(rows, []).splitlines() if "above 1" in line)
    assert note.startswith("- dose 1000 sparse seed 3 (") and "information score 1.004 is above 1" in note
