"""reconstruction.h5: written in ptychodus 1.7's product layout, read back field by field with h5py."""

import h5py
import numpy as np
import pytest

from fly64_data.sample import synthetic_probe
from fly64_train.evaluation.product import NominalGeometry, ProductMetadata, write_product

N = 32


def _inputs():
    rng = np.random.default_rng(0)
    obj = (rng.uniform(0.5, 1.0, (48, 64)) * np.exp(1j * rng.uniform(-1, 1, (48, 64)))).astype(np.complex64)
    probe = np.asarray(synthetic_probe(N), dtype=np.complex64)
    positions = np.array([[20.0, 30.5], [20.0, 38.5], [28.25, 30.5]])  # (y, x) in object pixels
    return obj, probe, positions, np.array([4, 9, 17])


def _metadata(geometry):
    return ProductMetadata.nominal("dose_1000/dense/gs2", "simulated; nominal geometry", geometry,
                                   probe_photon_count=1000.0)


def test_product_round_trips_field_by_field(tmp_path):
    geometry = NominalGeometry()
    pixel = geometry.object_pixel_size_m(N)
    obj, probe, positions, indexes = _inputs()
    path = write_product(tmp_path / "job" / "reconstruction.h5", object_patch=obj, pixel_size_m=pixel,
                         center_m=(24.0 * pixel, 32.0 * pixel), probe=probe, positions_px=positions,
                         indexes=indexes, metadata=_metadata(geometry), losses=[3.0, 2.5])
    assert path == tmp_path / "job" / "reconstruction.h5"
    assert [p.name for p in path.parent.iterdir()] == ["reconstruction.h5"]  # no temporary left

    with h5py.File(path, "r") as h5:
        attrs = h5.attrs
        assert attrs["name"] == "dose_1000/dense/gs2"
        assert attrs["comments"] == "simulated; nominal geometry"
        assert attrs["detector_object_distance_m"] == 2.0
        assert attrs["photon_energy_eV"] == attrs["probe_energy_eV"] == 8000.0
        assert attrs["probe_photon_count"] == 1000.0
        for key in ("exposure_time_s", "mass_attenuation_m2_per_kg", "tomography_angle_deg",
                    "focus_object_distance_m", "tilt_angle_deg"):
            assert attrs[key] == 0.0, key
        assert bool(attrs["far_field"]) is True

        h5_object = h5["object"]
        np.testing.assert_array_equal(h5_object[()], obj[np.newaxis])
        assert h5_object.dtype == np.complex64
        assert h5_object.attrs["pixel_width_m"] == h5_object.attrs["pixel_height_m"] == pixel
        assert h5_object.attrs["center_x_m"] == pytest.approx(32.0 * pixel)
        assert h5_object.attrs["center_y_m"] == pytest.approx(24.0 * pixel)
        assert h5["object_layer_spacing_m"].shape == (0,)

        h5_probe = h5["probe"]
        np.testing.assert_array_equal(h5_probe[()], probe[np.newaxis, np.newaxis])
        assert h5_probe.attrs["pixel_width_m"] == h5_probe.attrs["pixel_height_m"] == pixel

        np.testing.assert_array_equal(h5["probe_position_indexes"][()], indexes)
        np.testing.assert_allclose(h5["probe_position_x_m"][()], positions[:, 1] * pixel)
        np.testing.assert_allclose(h5["probe_position_y_m"][()], positions[:, 0] * pixel)

        np.testing.assert_array_equal(h5["loss_epochs"][()], [0, 1])
        np.testing.assert_array_equal(h5["loss_values"][()], [3.0, 2.5])


def test_nominal_pixel_size_is_the_far_field_sampling():
    geometry = NominalGeometry()
    # 8 keV -> 1.5498 Angstrom; 1.5498e-10 * 2 m / (32 * 75 um) = 129.2 nm
    assert geometry.wavelength_m == pytest.approx(1.5498e-10, rel=1e-4)
    assert geometry.object_pixel_size_m(N) == pytest.approx(129.15e-9, rel=1e-3)


@pytest.mark.parametrize("change, needle", [
    ({"object_patch": np.ones((4, 4))}, "object_patch must be complex"),
    ({"probe": np.ones((3, 4), dtype=complex)}, "probe must be square"),
    ({"positions_px": np.zeros((3, 3))}, "positions_px must be (n, 2)"),
    ({"indexes": np.array([1, 2])}, "indexes must be (3,)"),
    ({"pixel_size_m": 0.0}, "pixel_size_m must be positive"),
    ({"metadata": ProductMetadata("", "", 2.0, 8000.0)}, "product name must not be empty"),
])
def test_bad_input_is_one_line_naming_the_file_and_keeps_the_old_file(tmp_path, change, needle):
    path = tmp_path / "reconstruction.h5"
    path.write_bytes(b"previous")
    obj, probe, positions, indexes = _inputs()
    kwargs = dict(object_patch=obj, pixel_size_m=1e-7, center_m=(0.0, 0.0), probe=probe, positions_px=positions,
                  indexes=indexes, metadata=_metadata(NominalGeometry()))
    kwargs.update(change)
    with pytest.raises(ValueError) as exc:
        write_product(path, **kwargs)
    message = str(exc.value)
    assert message.startswith(f"{path}: ") and needle in message and "\n" not in message
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["reconstruction.h5"]
