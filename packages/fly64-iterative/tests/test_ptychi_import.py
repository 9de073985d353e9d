"""pty-chi imports without a working torchvision, and the stand-in stays private to that import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.ndimage import convolve1d

from fly64_iterative.ptychi_import import PTYCHI_VERSION, GaussianBlur


def test_ptychi_loads_pinned_and_leaves_no_stand_in_behind():
    code = ("import sys; from fly64_iterative.ptychi_import import load_ptychi; p = load_ptychi(); "
            "import ptychi.utils as u; tv = sys.modules.get('torchvision'); "
            "print(p.__version__, u.GaussianBlur.__module__, tv is None or not hasattr(tv, '__fly64_stand_in__'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    version, blur_module, clean = out.stdout.split()
    assert version == PTYCHI_VERSION
    assert clean == "True"  # nobody after pty-chi's import finds the stand-in under the name torchvision
    assert blur_module in ("fly64_iterative.ptychi_import", "torchvision.transforms.transforms")


def test_gaussian_blur_stand_in_is_torchvisions_definition():
    # torchvision: normalised exp(-x^2 / 2 sigma^2) on x = -(k-1)/2 .. (k-1)/2, reflect padding (scipy "mirror").
    img = np.random.default_rng(0).normal(size=(20, 24))
    kernel = np.exp(-0.5 * (np.arange(9) - 4.0) ** 2 / 3.0**2)
    kernel /= kernel.sum()
    expected = convolve1d(convolve1d(img, kernel, axis=0, mode="mirror"), kernel, axis=1, mode="mirror")
    got = GaussianBlur(kernel_size=(9, 9), sigma=(3, 3))(torch.tensor(img)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_gaussian_blur_refuses_even_kernels():
    with pytest.raises(ValueError, match="odd positive kernel"):
        GaussianBlur(kernel_size=4, sigma=1.0)
