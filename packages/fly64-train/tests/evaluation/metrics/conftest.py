"""Known images for the metric tests: crops of the fly64 synthetic object."""

from __future__ import annotations

import numpy as np
import pytest

from fly64_data.sample import synthetic_object

SIZE = 160


@pytest.fixture(scope="module")
def big() -> np.ndarray:
    """A complex object larger than the test images, so shifted crops are true shifts (no wrap-around)."""
    return synthetic_object(SIZE + 32, 11).astype(np.complex128)


@pytest.fixture(scope="module")
def obj(big) -> np.ndarray:
    return big[16:16 + SIZE, 16:16 + SIZE]
