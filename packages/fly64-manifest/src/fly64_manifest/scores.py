"""Typed view of a job's evaluation ``metrics``: the scores, their flat floor, the alignment, the timing,
and "PINN + refine" (``metrics.refine``) where the evaluation refined.

Phase E (``training_manifest.json``) and Phase F (``iterative_manifest.json``) record their
scores in one shape, made by one scorer, so downstream code reads both through
:class:`Scores` (``job.scores``) instead of walking nested dicts. Every field the
scorer may leave out is ``None`` here; a value of the wrong JSON type (the schemas
type only the metric sets) reads as ``None`` too rather than failing a whole report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

#: The SPEC §8 metric set of one image component, in report order.
METRIC_NAMES: tuple[str, ...] = ("mae", "psnr", "ssim", "ms_ssim", "frc50", "frc_1_7", "pearson")
#: The components a metric set is recorded for.
COMPONENTS: tuple[str, ...] = ("amplitude", "phase")
#: Metrics where a smaller value is the better reconstruction (every other one: larger is better).
LOWER_IS_BETTER: frozenset[str] = frozenset({"mae"})


def _number(value: Any) -> float | None:
    """A finite JSON number as float, else ``None`` (bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class MetricSet:
    """The scores of one component (amplitude or phase) against the ground truth.

    FRC crossings are in cycles/pixel and ``None`` when the curve never crossed;
    PSNR is ``None`` only for a perfect match.
    """

    mae: float | None = None
    psnr: float | None = None
    ssim: float | None = None
    ms_ssim: float | None = None
    frc50: float | None = None
    frc_1_7: float | None = None
    pearson: float | None = None

    @classmethod
    def from_json(cls, doc: Any) -> MetricSet | None:
        """The set recorded as ``doc`` (a mapping), or ``None`` when there is none."""
        if not isinstance(doc, Mapping):
            return None
        return cls(**{name: _number(doc.get(name)) for name in METRIC_NAMES})

    def get(self, name: str) -> float | None:
        """The score called ``name`` (one of :data:`METRIC_NAMES`)."""
        if name not in METRIC_NAMES:
            raise KeyError(f"unknown metric {name!r} (known: {', '.join(METRIC_NAMES)})")
        return getattr(self, name)


@dataclass(frozen=True)
class Region:
    """The scored region of the object, half-open pixel bounds ``[row0, row1) x [col0, col1)``."""

    row0: int
    row1: int
    col0: int
    col1: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.row1 - self.row0, self.col1 - self.col0)


@dataclass(frozen=True)
class Alignment:
    """What the scorer removed before scoring: the amplitude's scale, the phase's offset and ramp.

    Applying it to the stored (unaligned) object of a product gives the aligned images that were scored:
    amplitude ``amplitude_scale * |o|``, phase ``angle(o) + phase_offset_rad + gy * row + gx * col`` on the
    region's own pixel grid, with ``(gy, gx) = phase_ramp_rad_per_px``.
    """

    amplitude_scale: float
    phase_offset_rad: float
    phase_ramp_rad_per_px: tuple[float, float]


@dataclass(frozen=True)
class ReconstructionTiming:
    """Wall time of the reconstruction alone (no loading, no scoring), over how many patterns, and where."""

    wall_s: float
    """Seconds."""
    n_patterns: int
    """Diffraction patterns reconstructed."""
    device: str
    """Where it ran, e.g. ``cpu`` or ``cuda:0``."""
    device_name: str | None = None
    """The device's model name (a GPU's), where recorded."""
    refine_s: float | None = None
    """Of ``wall_s``, the seconds spent fine-tuning ("PINN + refine" only; ``None`` for every other method)."""

    @property
    def seconds_per_1000_patterns(self) -> float:
        return self.wall_s / self.n_patterns * 1000.0


@dataclass(frozen=True)
class Information:
    """The held-out information score (SPEC §8a): 1 = as good as the true object, 0 = no better than flat."""

    info: float | None
    """``None`` when the truth does not beat the flat object on the held-out half."""
    patterns: int | None = None
    """Patterns scored."""


@dataclass(frozen=True)
class RefineSettings:
    """How "PINN + refine" fine-tuned the model on the test split's own patterns (``metrics.refine.refine``)."""

    steps: int
    """Optimisation steps of the fine-tuning."""
    lr: float
    """Its Adam learning rate."""
    batch_size: int | None = None
    """Groups per step (``None``: training's patterns per step)."""
    count_split: float | None = None
    """Photon split of the loss, as the bundle was trained (``None``: full counts)."""
    seed: int | None = None
    """Seed of the batch order and photon splits (``None`` where not recorded)."""


@dataclass(frozen=True)
class Scores:
    """A job's evaluation, typed: read it as ``job.scores``.

    Attributes
    ----------
    amplitude, phase : MetricSet
        The reconstruction's scores (empty sets when not recorded).
    floor_amplitude, floor_phase : MetricSet or None
        The same scores of a flat (structureless) object put through the same alignment:
        the floor to read the scores against.
    coverage : float or None
        Fraction of the scored region's pixels some probe lit.
    region : Region or None
        The scored region of the object.
    alignment : Alignment or None
        Scale, phase offset and ramp removed before scoring.
    reconstruction : ReconstructionTiming or None
        Wall time of the reconstruction, where the producer recorded it.
    information : Information or None
        The held-out information score, where recorded.
    refine : Scores or None
        "PINN + refine" (``metrics.refine``): the scores of the same model fine-tuned on the test
        split's own patterns, read like these (``region`` and ``alignment`` are ``None``; its
        ``reconstruction.refine_s`` is the fine-tuning, ``wall_s`` fine-tuning plus prediction);
        ``None`` when the evaluation did not refine.
    refined_with : RefineSettings or None
        On a ``refine`` block: the fine-tuning's settings; ``None`` on plain scores.
    """

    amplitude: MetricSet
    phase: MetricSet
    floor_amplitude: MetricSet | None = None
    floor_phase: MetricSet | None = None
    coverage: float | None = None
    region: Region | None = None
    alignment: Alignment | None = None
    reconstruction: ReconstructionTiming | None = None
    information: Information | None = None
    refine: Scores | None = None
    refined_with: RefineSettings | None = None

    def metric(self, component: str, name: str) -> float | None:
        """``component`` ``amplitude``/``phase`` and a :data:`METRIC_NAMES` name, or ``("information", "info")``."""
        if component == "information":
            return None if self.information is None or name != "info" else self.information.info
        return self._set(component).get(name)

    def floor(self, component: str, name: str) -> float | None:
        """The flat object's score (``None`` where not recorded; 0 by definition for the information score)."""
        if component == "information":
            return 0.0 if name == "info" and self.information is not None else None
        floor = self.floor_amplitude if self._check(component) == "amplitude" else self.floor_phase
        return None if floor is None else floor.get(name)

    def _set(self, component: str) -> MetricSet:
        return self.amplitude if self._check(component) == "amplitude" else self.phase

    @staticmethod
    def _check(component: str) -> str:
        if component not in COMPONENTS:
            raise KeyError(f"unknown component {component!r} (known: {', '.join(COMPONENTS)}, information)")
        return component

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, Any] | None, *, timing: ReconstructionTiming | None = None
                     ) -> Scores | None:
        """Type a recorded ``metrics`` object (``None`` gives ``None``).

        ``timing`` stands in where the producer records the reconstruction time outside ``metrics``
        (Phase F records it on the job).
        """
        if not isinstance(metrics, Mapping):
            return None
        refine = metrics.get("refine")
        # The refine block has the shape of ``metrics`` with its settings under its own "refine" key.
        return replace(cls._read(metrics, timing),
                       refine=None if not isinstance(refine, Mapping) else replace(
                           cls._read(refine, None), refined_with=_settings(refine.get("refine"))))

    @classmethod
    def _read(cls, metrics: Mapping[str, Any], timing: ReconstructionTiming | None) -> Scores:
        floor = metrics.get("floor") if isinstance(metrics.get("floor"), Mapping) else {}
        return cls(
            amplitude=MetricSet.from_json(metrics.get("amplitude")) or MetricSet(),
            phase=MetricSet.from_json(metrics.get("phase")) or MetricSet(),
            floor_amplitude=MetricSet.from_json(floor.get("amplitude")),
            floor_phase=MetricSet.from_json(floor.get("phase")),
            coverage=_number(metrics.get("coverage")),
            region=_region(metrics.get("region")),
            alignment=_alignment(metrics.get("alignment")),
            reconstruction=timing or _timing(metrics.get("reconstruction")),
            information=_information(metrics.get("information")),
        )


def _region(doc: Any) -> Region | None:
    if not isinstance(doc, Mapping):
        return None
    values = [doc.get(k) for k in ("row0", "row1", "col0", "col1")]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        return None
    region = Region(*values)
    return region if region.row1 > region.row0 and region.col1 > region.col0 else None


def _alignment(doc: Any) -> Alignment | None:
    if not isinstance(doc, Mapping):
        return None
    scale, offset = _number(doc.get("amplitude_scale")), _number(doc.get("phase_offset_rad"))
    ramp = doc.get("phase_ramp_rad_per_px")
    ramp = tuple(_number(v) for v in ramp) if isinstance(ramp, (list, tuple)) and len(ramp) == 2 else None
    if scale is None or offset is None or ramp is None or None in ramp:
        return None
    return Alignment(scale, offset, (ramp[0], ramp[1]))


def timing_of(wall_s: Any, n_patterns: Any, device: Any, device_name: Any = None,
              refine_s: Any = None) -> ReconstructionTiming | None:
    """A :class:`ReconstructionTiming` from recorded values, or ``None`` unless the first three are usable."""
    wall = _number(wall_s)
    if wall is None or wall < 0 or not isinstance(device, str) or not device:
        return None
    if isinstance(n_patterns, bool) or not isinstance(n_patterns, int) or n_patterns < 1:
        return None
    refine = _number(refine_s)
    return ReconstructionTiming(wall, n_patterns, device, device_name if isinstance(device_name, str) else None,
                                refine if refine is not None and refine >= 0 else None)


def _timing(doc: Any) -> ReconstructionTiming | None:
    if not isinstance(doc, Mapping):
        return None
    return timing_of(doc.get("wall_s"), doc.get("n_patterns"), doc.get("device"), doc.get("device_name"),
                     doc.get("refine_s"))


def _whole(value: Any, least: int) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= least
    return value if ok else None


def _settings(doc: Any) -> RefineSettings | None:
    """The recorded refine settings, or ``None`` unless ``steps`` and ``lr`` are usable."""
    if not isinstance(doc, Mapping):
        return None
    steps, lr = _whole(doc.get("steps"), 1), _number(doc.get("lr"))
    if steps is None or lr is None or lr <= 0:
        return None
    split = _number(doc.get("count_split"))
    return RefineSettings(steps, lr, _whole(doc.get("batch_size"), 1),
                          split if split is not None and 0 < split < 1 else None, _whole(doc.get("seed"), 0))


def _information(doc: Any) -> Information | None:
    if not isinstance(doc, Mapping) or "info" not in doc:
        return None
    patterns = doc.get("patterns")
    return Information(_number(doc.get("info")),
                       patterns if isinstance(patterns, int) and not isinstance(patterns, bool) else None)
