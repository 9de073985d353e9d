"""The minimum spacing S of a view, and the length its overlap fraction f refers to.

Two bases:

* ``patch`` (the design's rule): S = (1 - f) N, N the patch size. f is then a
  spacing rule relative to the patch, not the overlap of the probe footprints.
* ``probe``: S = (1 - f) D, D the measured probe diameter, so that f is close to
  the nearest-neighbour footprint overlap actually reached.
"""

from __future__ import annotations

from dataclasses import dataclass

from fly64_data.design import StudyDesign

#: The spacing bases Phase D knows, in the order the CLI lists them.
SPACING_BASES = ("patch", "probe")
#: The design's rule; what a manifest without a recorded basis was built with.
DEFAULT_SPACING_BASIS = "patch"


@dataclass(frozen=True)
class ViewSpacing:
    """The spacing a view is selected with, and how it was derived.

    Attributes
    ----------
    basis : str
        ``patch`` or ``probe``: which length the overlap fraction applies to.
    basis_length_px : float
        That length in pixels: N for ``patch``, the measured probe diameter D for ``probe``.
    fraction : float
        The view's target overlap fraction f.
    value_px : float
        S, the minimum distance between kept positions.
    """

    basis: str
    basis_length_px: float
    fraction: float
    value_px: float

    def check(self) -> None:
        """Raise ValueError if the fields are inconsistent."""
        if self.basis not in SPACING_BASES:
            raise ValueError(f"unknown spacing basis {self.basis!r} (known: {', '.join(SPACING_BASES)})")
        if not self.basis_length_px > 0:
            raise ValueError(f"basis length must be positive, got {self.basis_length_px}")
        if not 0.0 <= self.fraction < 1.0:
            raise ValueError(f"overlap fraction must be in [0, 1), got {self.fraction}")
        if not self.value_px > 0:
            raise ValueError(f"spacing must be positive, got {self.value_px}")

    def to_dict(self) -> dict[str, object]:
        return {"spacing_basis": self.basis, "spacing_basis_px": self.basis_length_px, "spacing_px": self.value_px}


def view_spacing(design: StudyDesign, view: str, patch_size: int, basis: str = DEFAULT_SPACING_BASIS,
                 probe_diameter_px: float | None = None) -> ViewSpacing:
    """The spacing of ``view`` for data of patch size N under ``basis``.

    With the ``patch`` basis the design's threshold applies when the data has the
    design's N; data of another N (a user's ``--base-npz`` probe) gets
    ``S = (1 - f) N`` for its own N, so a view means the same overlap whatever the
    probe size. The ``probe`` basis needs the measured probe diameter.
    """
    fraction = float(design.overlap_views[view])
    if basis == "patch":
        if patch_size == int(design.patch_size_pixels):
            value = float(design.spacing_thresholds[view])
        else:
            value = (1.0 - fraction) * patch_size
        spacing = ViewSpacing("patch", float(patch_size), fraction, value)
    elif basis == "probe":
        if probe_diameter_px is None:
            raise ValueError("the probe spacing basis needs the measured probe diameter")
        spacing = ViewSpacing("probe", float(probe_diameter_px), fraction, (1.0 - fraction) * probe_diameter_px)
    else:
        raise ValueError(f"unknown spacing basis {basis!r} (known: {', '.join(SPACING_BASES)})")
    spacing.check()
    return spacing
