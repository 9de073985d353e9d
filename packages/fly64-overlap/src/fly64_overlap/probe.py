"""Probe size measured from the probe itself, not assumed from the design."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Share of the probe intensity |P|^2 the reported diameter encloses.
ENERGY_FRACTION = 0.95


@dataclass(frozen=True)
class ProbeDiameter:
    """An encircled-energy probe diameter and how it was measured.

    Attributes
    ----------
    value_px : float
        Diameter in pixels of the smallest circle, centred on the intensity
        centroid, that holds ``energy_fraction`` of sum |P|^2.
    energy_fraction : float
        The enclosed share of the intensity.
    centre_px : tuple of float
        Intensity centroid ``(y, x)`` in probe pixels.
    """

    value_px: float
    energy_fraction: float
    centre_px: tuple[float, float]

    def to_dict(self) -> dict[str, object]:
        return {
            "value_px": self.value_px,
            "method": "encircled_energy",
            "energy_fraction": self.energy_fraction,
            "centre_px": list(self.centre_px),
            "definition": (f"diameter of the circle about the |P|^2 centroid holding "
                           f"{self.energy_fraction:g} of the total probe intensity"),
        }


def measure_probe_diameter(probe: np.ndarray, energy_fraction: float = ENERGY_FRACTION) -> ProbeDiameter:
    """Encircled-energy diameter of a 2-D complex probe.

    Parameters
    ----------
    probe : numpy.ndarray
        (N, N) complex (or real) probe.
    energy_fraction : float
        Share of sum |P|^2 to enclose, in (0, 1].

    Raises
    ------
    ValueError
        If the probe is not 2-D, has no intensity, or the fraction is out of range.
    """
    if not 0.0 < energy_fraction <= 1.0:
        raise ValueError(f"energy_fraction must be in (0, 1], got {energy_fraction}")
    arr = np.asarray(probe)
    if arr.ndim != 2:
        raise ValueError(f"probe must be 2-D, got shape {arr.shape}")
    intensity = np.abs(arr.astype(np.complex128)) ** 2
    total = float(intensity.sum())
    if not total > 0 or not np.isfinite(total):
        raise ValueError("probe has no finite, non-zero intensity")
    yy, xx = np.indices(intensity.shape, dtype=np.float64)
    cy = float((intensity * yy).sum() / total)
    cx = float((intensity * xx).sum() / total)
    radius = np.hypot(yy - cy, xx - cx).ravel()
    order = np.argsort(radius, kind="stable")
    enclosed = np.cumsum(intensity.ravel()[order]) / total
    # Interpolating between pixel radii gives a diameter that varies smoothly
    # with the probe instead of jumping by whole pixels.
    r = float(np.interp(energy_fraction, enclosed, radius[order]))
    return ProbeDiameter(2.0 * r, float(energy_fraction), (cy, cx))
