import pytest

from fly64_data.design import StudyDesign, dose_dirname, get_study_design


def test_defaults_match_the_spec():
    d = get_study_design()
    assert d.dose_list == [1e3, 1e4, 1e5]
    assert d.gridsizes == [1, 2]
    assert d.neighbor_count == 7
    assert d.patch_size_pixels == 128
    assert d.overlap_views == {"dense": 0.7, "sparse": 0.2}
    assert d.spacing_thresholds == pytest.approx({"dense": 38.4, "sparse": 102.4})
    assert d.train_test_split_axis == "y"
    assert d.rng_seeds == {"simulation": 42, "grouping": 123, "subsampling": 456}
    assert d.metrics_config == {"ms_ssim_sigma": 1.0, "emphasize_phase": True, "report_amplitude": True,
                                "frc_threshold": 0.5}


def test_to_dict_has_exactly_the_nine_fields():
    assert set(get_study_design().to_dict()) == {
        "dose_list", "gridsizes", "neighbor_count", "patch_size_pixels", "overlap_views",
        "spacing_thresholds", "train_test_split_axis", "rng_seeds", "metrics_config",
    }


def test_construction_does_not_validate():
    design = StudyDesign(dose_list=[])
    with pytest.raises(ValueError, match="dose_list must not be empty"):
        design.validate()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"neighbor_count": 3}, r"neighbor_count.*must be ≥ C"),
        ({"overlap_views": {"dense": 1.0}}, r"overlap_views.*must be in \[0, 1\)"),
        ({"overlap_views": {"dense": -0.1}}, r"overlap_views.*must be in \[0, 1\)"),
        ({"spacing_thresholds": {"dense": 0.0}}, "must be positive"),
        ({"dose_list": []}, "dose_list must not be empty"),
        ({"dose_list": [1e3, 0.0]}, "All doses must be positive"),
    ],
)
def test_validation_messages(overrides, message):
    with pytest.raises(ValueError, match=message):
        get_study_design(**overrides)


def test_validation_order_k_checked_before_everything_else():
    # Every field is wrong: the first check (neighbor_count) must be the one reported.
    design = StudyDesign(neighbor_count=1, overlap_views={"dense": 2.0}, spacing_thresholds={"dense": -1.0},
                         dose_list=[])
    with pytest.raises(ValueError, match="neighbor_count"):
        design.validate()
    design.neighbor_count = 7
    with pytest.raises(ValueError, match="overlap_views"):
        design.validate()
    design.overlap_views = {"dense": 0.5}
    with pytest.raises(ValueError, match="spacing_thresholds"):
        design.validate()
    design.spacing_thresholds = {"dense": 64.0}
    with pytest.raises(ValueError, match="dose_list"):
        design.validate()


def test_dose_dirname():
    assert dose_dirname(1e3) == "dose_1000"
    assert dose_dirname(100000.0) == "dose_100000"
    with pytest.raises(ValueError):
        dose_dirname(12.5)
