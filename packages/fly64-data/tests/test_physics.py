"""Pin the one imaging convention (fly64_data.physics)."""

import numpy as np
import pytest

from fly64_data.physics import extract_patches, far_field, far_field_intensity, interp_matrix, resample

N = 32


def test_constant_exit_wave_lands_on_dc_pixel():
    psi = np.ones((N, N), np.complex64)
    intensity = far_field_intensity(psi)
    assert intensity[N // 2, N // 2] == pytest.approx(N * N, rel=1e-6)
    intensity[N // 2, N // 2] = 0
    assert np.abs(intensity).max() < 1e-6


def test_delta_exit_wave_gives_flat_far_field():
    psi = np.zeros((N, N), np.complex64)
    psi[3, 7] = 2.0
    np.testing.assert_allclose(far_field_intensity(psi), 4.0 / N**2, rtol=1e-5)


def test_parseval():
    rng = np.random.default_rng(0)
    psi = (rng.standard_normal((5, N, N)) + 1j * rng.standard_normal((5, N, N))).astype(np.complex64)
    np.testing.assert_allclose(far_field_intensity(psi).sum(axis=(1, 2)), (np.abs(psi) ** 2).sum(axis=(1, 2)),
                               rtol=1e-5)


def test_tilted_wave_lands_off_centre_by_its_frequency():
    # exp(2 pi i k x / N) puts all energy k pixels right of DC.
    x = np.arange(N)
    psi = np.exp(2j * np.pi * 3 * x / N)[None, :] * np.ones((N, 1))
    intensity = far_field_intensity(psi)
    assert np.unravel_index(intensity.argmax(), intensity.shape) == (N // 2, N // 2 + 3)


def test_shifted_delta_object_lands_where_the_convention_says():
    obj = np.zeros((100, 120), np.complex64)
    obj[40, 70] = 1.0
    # Patch centred at (y, x) = (45, 60): pixel [N/2, N/2] samples (45, 60),
    # so the delta at (40, 70) appears at [N/2 - 5, N/2 + 10].
    patch = extract_patches(obj, np.array([45.0]), np.array([60.0]), N)[0]
    assert np.unravel_index(np.abs(patch).argmax(), patch.shape) == (N // 2 - 5, N // 2 + 10)
    assert np.abs(patch).sum() == pytest.approx(1.0)


def test_half_pixel_shift_splits_the_delta_between_two_pixels():
    obj = np.zeros((100, 120), np.complex64)
    obj[40, 70] = 1.0
    patch = np.abs(extract_patches(obj, np.array([40.0]), np.array([69.5]), N)[0])
    assert patch[N // 2, N // 2] == pytest.approx(0.5)
    assert patch[N // 2, N // 2 + 1] == pytest.approx(0.5)
    assert patch.sum() == pytest.approx(1.0)


def test_extract_patches_matches_the_general_resampler():
    rng = np.random.default_rng(1)
    obj = (rng.standard_normal((90, 80)) + 1j * rng.standard_normal((90, 80))).astype(np.complex64)
    y = rng.uniform(N / 2 + 1, 90 - N / 2 - 2, size=6)
    x = rng.uniform(N / 2 + 1, 80 - N / 2 - 2, size=6)
    fast = extract_patches(obj, y, x, N)
    general = resample(np.broadcast_to(obj, (6, 90, 80)), y - N // 2, x - N // 2, N)
    np.testing.assert_allclose(fast, general, atol=1e-5)


def test_extract_refuses_positions_outside_the_object():
    obj = np.zeros((40, 40), np.complex64)
    with pytest.raises(ValueError, match="outside"):
        extract_patches(obj, np.array([10.0]), np.array([20.0]), N)


def _resample_by_matrices(images, y0, x0, n_out):
    """The definition of :func:`resample`: the dense tent-kernel matrices of :func:`interp_matrix`."""
    ny, nx = n_out
    wy = interp_matrix(ny, images.shape[-2], y0)
    wx = interp_matrix(nx, images.shape[-1], x0)
    return wy @ images @ np.swapaxes(wx, -1, -2)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_resample_is_the_tent_kernel_matrix_product(dtype):
    rng = np.random.default_rng(7)
    img = rng.standard_normal((2, 1, 12, 10)).astype(dtype)
    if np.iscomplexobj(img):
        img = img + 1j * rng.standard_normal(img.shape)
    # Origins inside, straddling and entirely outside the image (zero padding), integer and fractional,
    # one per (batch, channel): the images' channel axis broadcasts against the origins'.
    y0 = np.array([[-3.25, 0.0, 11.5], [-40.0, 2.75, 9.0]])
    x0 = np.array([[1.75, -2.0, 0.5], [7.25, 30.0, -0.5]])
    got = resample(img, y0, x0, (15, 9))
    assert got.shape == (2, 3, 15, 9)
    np.testing.assert_allclose(got, _resample_by_matrices(img, y0, x0, (15, 9)), atol=1e-12)


def test_resample_gradient_in_torch_is_the_matrix_transpose():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    img = torch.tensor(rng.standard_normal((3, 9, 9)) + 1j * rng.standard_normal((3, 9, 9)), requires_grad=True)
    y0, x0 = torch.tensor([-2.5, 0.25, 3.0], dtype=torch.float64), torch.tensor([1.5, -0.75, 4.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: resample(a, y0, x0, (11, 10), xp=torch), (img,))
    # A cotangent pulled back through the taps equals W_y^T G W_x (the dense definition's adjoint).
    grad = torch.tensor(rng.standard_normal((3, 11, 10)), dtype=torch.complex128)
    resample(img, y0, x0, (11, 10), xp=torch).backward(grad)
    wy, wx = interp_matrix(11, 9, y0.numpy()), interp_matrix(10, 9, x0.numpy())
    np.testing.assert_allclose(img.grad.numpy(), np.swapaxes(wy, -1, -2) @ grad.numpy() @ wx, atol=1e-12)


def test_resample_with_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    img = (rng.standard_normal((3, N, N)) + 1j * rng.standard_normal((3, N, N))).astype(np.complex64)
    y0 = np.array([-3.25, 0.0, 4.5])
    x0 = np.array([1.75, -2.0, 0.5])
    ref = resample(img, y0, x0, (N + 8, N))
    got = resample(torch.from_numpy(img), torch.from_numpy(y0).float(), torch.from_numpy(x0).float(), (N + 8, N),
                   xp=torch)
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-5)
    np.testing.assert_allclose(far_field(torch.from_numpy(img), xp=torch).numpy(), far_field(img), atol=1e-4)


@pytest.mark.parametrize("shape", [(4, 16, 16), (3, 15, 17)])
def test_far_field_is_fftshift_of_unitary_fft(shape):
    rng = np.random.default_rng(4)
    psi = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    ref = np.fft.fftshift(np.fft.fft2(psi.astype(np.complex128), norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(far_field(psi), ref, atol=1e-5)
