"""Phase A: the study's constants in one validated dataclass."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

#: K, nearest neighbours a gs2 group's partners are drawn from. Written here and nowhere else: the
#: grouping rule (:mod:`fly64_data.grouping`), the trainer and the overlap metrics take it from here.
NEIGHBOR_COUNT = 7
#: Seed of the gs2 group draw (the design's ``rng_seeds["grouping"]``); written here only, like K.
GROUPING_SEED = 123


def _default_overlap_views() -> dict[str, float]:
    return {"dense": 0.7, "sparse": 0.2}


def _default_seeds() -> dict[str, int]:
    return {"simulation": 42, "grouping": GROUPING_SEED, "subsampling": 456}


def _default_metrics() -> dict[str, object]:
    return {"ms_ssim_sigma": 1.0, "emphasize_phase": True, "report_amplitude": True, "frc_threshold": 0.5}


@dataclass
class StudyDesign:
    """Constants of the fly64 dose/overlap study.

    Construction does not validate (so a caller can build a deliberately broken
    design and inspect it); call :meth:`validate` or use :func:`get_study_design`.

    Attributes
    ----------
    dose_list : list of float
        Mean photons per diffraction pattern, one Phase C dataset each.
    gridsizes : list of int
        Grouping sizes trained: 1 (single pattern) and 2 (2x2 = 4 patterns a group).
    neighbor_count : int
        K, nearest neighbours considered when forming a gs2 group.
    patch_size_pixels : int
        N, the detector / object patch size.
    overlap_views : dict
        View name -> target overlap fraction f in [0, 1).
    spacing_thresholds : dict
        View name -> minimum spacing S = (1 - f) N in pixels (derived when empty).
    """

    dose_list: list[float] = field(default_factory=lambda: [1e3, 1e4, 1e5])
    gridsizes: list[int] = field(default_factory=lambda: [1, 2])
    neighbor_count: int = NEIGHBOR_COUNT
    patch_size_pixels: int = 128
    overlap_views: dict[str, float] = field(default_factory=_default_overlap_views)
    spacing_thresholds: dict[str, float] = field(default_factory=dict)
    train_test_split_axis: str = "y"
    rng_seeds: dict[str, int] = field(default_factory=_default_seeds)
    metrics_config: dict[str, object] = field(default_factory=_default_metrics)

    def __post_init__(self) -> None:
        if not self.spacing_thresholds:
            self.spacing_thresholds = self.derived_spacings()

    def derived_spacings(self) -> dict[str, float]:
        """S = (1 - f) N for each view."""
        return {name: (1.0 - f) * self.patch_size_pixels for name, f in self.overlap_views.items()}

    @property
    def max_group_size(self) -> int:
        """C = max(gridsizes)^2, the number of patterns in the largest group."""
        return max(self.gridsizes) ** 2

    def validate(self) -> None:
        """Raise ValueError on the first inconsistency, in the documented order."""
        c = self.max_group_size
        if self.neighbor_count < c:
            raise ValueError(
                f"neighbor_count K={self.neighbor_count} must be ≥ C={c} (max(gridsizes)^2)"
            )
        for name, f in self.overlap_views.items():
            if not 0.0 <= f < 1.0:
                raise ValueError(f"overlap_views[{name!r}]={f} must be in [0, 1)")
        for name, s in self.spacing_thresholds.items():
            if not s > 0:
                raise ValueError(f"spacing_thresholds[{name!r}]={s} must be positive")
        if not self.dose_list:
            raise ValueError("dose_list must not be empty")
        if any(not d > 0 for d in self.dose_list):
            raise ValueError(f"All doses must be positive (got {self.dose_list})")

    def to_dict(self) -> dict[str, object]:
        """The nine design fields as plain JSON-ready values."""
        return asdict(self)


def get_study_design(**overrides: object) -> StudyDesign:
    """Build the default design (with optional field overrides), validate it, return it."""
    design = StudyDesign(**overrides)  # type: ignore[arg-type]
    design.validate()
    return design


def dose_dirname(dose: float) -> str:
    """Directory name for a dose: ``dose_1000`` for 1e3."""
    if float(dose) != int(dose):
        raise ValueError(f"dose {dose} is not a whole number of photons; directories use dose_<int>")
    return f"dose_{int(dose)}"
