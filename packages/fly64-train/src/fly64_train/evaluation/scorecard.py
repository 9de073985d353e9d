"""A job's evaluation as the scorer made it, typed until it is written: the manifest's ``metrics`` object.

The one scorer (:mod:`fly64_train.evaluation.scoring`) fills a :class:`Scorecard`; it travels
typed through :func:`fly64_train.evaluation.evaluate.score_job`, the study runner and Phase F's
job record, and becomes JSON in one place, :meth:`Scorecard.to_json`, when a manifest is written
(schema ``training_manifest`` #/$defs/metrics; Phase F records the same shape). Values are held
unrounded; ``to_json`` rounds them as every manifest since 1.0 has recorded them. The reading side
is :class:`fly64_manifest.scores.Scores` (``job.scores``), which types what ``to_json`` wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fly64_train.evaluation.metrics import ComponentScores, InformationScore
from fly64_train.training import field_checks

if TYPE_CHECKING:
    # Only named: refine.py reaches the bundle loader (and so the backend seam), which Phase F must not import.
    from fly64_train.evaluation.refine import RefineConfig

#: Unit of every FRC crossing the scorer records (Nyquist = 0.5).
FRC_UNIT = "cycles/pixel"


@dataclass(frozen=True)
class FlatFloor:
    """The scores of a flat (structureless) object put through the same alignment: the floor to read against."""

    amplitude: ComponentScores
    """The flat amplitude's scores."""
    phase: ComponentScores
    """The flat phase's scores."""

    def to_json(self) -> dict[str, Any]:
        return {"amplitude": self.amplitude.as_json(), "phase": self.phase.as_json()}


@dataclass(frozen=True)
class AlignmentRecord:
    """What the scorer removed before scoring (fitted on the covered pixels), and the residual shift it measured."""

    amplitude_scale: float
    """Least-squares scale of the amplitude."""
    phase_offset_rad: float
    """Constant removed from the phase."""
    phase_ramp_rad_per_px: tuple[float, float]
    """``(gy, gx)``: the linear phase ramp removed, on the region's pixel grid."""
    shift_px: tuple[float, float]
    """Sub-pixel shift to the truth (phase cross-correlation): a diagnostic, never applied."""

    def check(self) -> None:
        for name, value in (("amplitude_scale", self.amplitude_scale), ("phase_offset_rad", self.phase_offset_rad),
                            *(("phase_ramp_rad_per_px", v) for v in self.phase_ramp_rad_per_px)):
            field_checks.real(name, value)

    def to_json(self) -> dict[str, Any]:
        gy, gx = self.phase_ramp_rad_per_px
        return {"amplitude_scale": round(float(self.amplitude_scale), 6),
                "phase_offset_rad": round(float(self.phase_offset_rad), 6),
                "phase_ramp_rad_per_px": [round(float(gy), 8), round(float(gx), 8)],
                "shift_px": [round(float(s), 3) for s in self.shift_px]}


@dataclass(frozen=True)
class ReconstructionTime:
    """Wall time of reconstructing the test split alone (no loading, no scoring), over how many patterns, where."""

    wall_s: float
    """Seconds (for "PINN + refine": fine-tuning plus prediction and stitch)."""
    n_patterns: int
    """Diffraction patterns reconstructed."""
    device: str
    """Where it ran: the backend's or engine's resolved device (``cpu``, ``cuda:0``)."""
    refine_s: float | None = None
    """Of ``wall_s``, the fine-tuning ("PINN + refine" only)."""

    def check(self) -> None:
        field_checks.real("wall_s", self.wall_s, 0)
        field_checks.integer("n_patterns", self.n_patterns, 1)
        field_checks.text("device", self.device)
        if self.refine_s is not None:
            field_checks.real("refine_s", self.refine_s, 0)

    def to_json(self) -> dict[str, Any]:
        refine = {} if self.refine_s is None else {"refine_s": round(float(self.refine_s), 4)}
        return {"wall_s": round(float(self.wall_s), 4), **refine, "n_patterns": int(self.n_patterns),
                "device": str(self.device)}


@dataclass(frozen=True)
class RefinedScorecard:
    """"PINN + refine": the scores of a copy of the model fine-tuned on the test split's own patterns."""

    amplitude: ComponentScores
    """The refined amplitude's scores."""
    phase: ComponentScores
    """The refined phase's scores."""
    coverage: float
    """Fraction of the scored region some probe lit (the same region as plain prediction's)."""
    settings: RefineConfig
    """The fine-tuning as run (its ``count_split`` the bundle's)."""
    reconstruction: ReconstructionTime
    """Fine-tuning plus prediction and stitch; ``refine_s`` the fine-tuning alone."""
    floor: FlatFloor | None = None
    """The flat floor (the same as plain prediction's: one split, one coverage rule)."""
    information: InformationScore | None = None
    """Held-out information score of a copy fine-tuned on half A only."""

    def check(self) -> None:
        field_checks.real("coverage", self.coverage, 0, 1)
        if self.reconstruction.refine_s is None:
            raise ValueError("a refined reconstruction's time must say how much of it was fine-tuning (refine_s)")
        self.reconstruction.check()
        self.settings.check()

    def to_json(self) -> dict[str, Any]:
        """The manifest's ``metrics.refine`` object (schema ``refined_metrics``)."""
        out: dict[str, Any] = {"amplitude": self.amplitude.as_json(), "phase": self.phase.as_json(),
                               "coverage": round(float(self.coverage), 6), "refine": self.settings.as_json(),
                               "reconstruction": self.reconstruction.to_json()}
        if self.floor is not None:
            out["floor"] = self.floor.to_json()
        if self.information is not None:
            out["information"] = self.information.as_json()
        return out


@dataclass(frozen=True)
class Scorecard:
    """One job's evaluation: the manifest's ``metrics`` object, typed (Phase E and Phase F alike).

    Build it with :meth:`fly64_train.evaluation.scoring.Evaluation.scorecard` (the scorer's numbers)
    and add the timing, information score and refinement with :func:`dataclasses.replace`.
    """

    amplitude: ComponentScores
    """The reconstruction's amplitude scores."""
    phase: ComponentScores
    """Its phase scores."""
    coverage: float
    """Fraction of the scored region's pixels some probe lit."""
    region: tuple[int, int, int, int]
    """``(row0, row1, col0, col1)``, half-open: the scored region of the object."""
    alignment: AlignmentRecord
    """What was removed before scoring."""
    floor: FlatFloor
    """The flat object's scores on the same pixels."""
    reconstruction: ReconstructionTime | None = None
    """Wall time of the reconstruction (``None`` where the producer did not time it)."""
    information: InformationScore | None = None
    """Held-out information score, where computed."""
    refine: RefinedScorecard | None = None
    """"PINN + refine", where the evaluation refined."""

    def check(self) -> None:
        """Refuse a scorecard no manifest may record, naming the field."""
        field_checks.real("coverage", self.coverage, 0, 1)
        r0, r1, c0, c1 = self.region
        if not (0 <= r0 < r1 and 0 <= c0 < c1):
            raise ValueError(f"region must be a non-empty (row0, row1, col0, col1), got {self.region}")
        self.alignment.check()
        for part in (self.reconstruction, self.refine):
            if part is not None:
                part.check()

    def to_json(self) -> dict[str, Any]:
        """The manifest's ``metrics`` object, keys in the order manifests have always recorded them.

        FRC crossings are in cycles/pixel (Nyquist 0.5) and null when the curve never falls below
        the threshold; PSNR is null only for a perfect match.
        """
        r0, r1, c0, c1 = self.region
        out: dict[str, Any] = {
            "amplitude": self.amplitude.as_json(), "phase": self.phase.as_json(), "frc_unit": FRC_UNIT,
            "coverage": round(float(self.coverage), 6),
            "region": {"row0": int(r0), "row1": int(r1), "col0": int(c0), "col1": int(c1)},
            "alignment": self.alignment.to_json(), "floor": self.floor.to_json(),
        }
        if self.reconstruction is not None:
            out["reconstruction"] = self.reconstruction.to_json()
        if self.information is not None:
            out["information"] = self.information.as_json()
        if self.refine is not None:
            out["refine"] = self.refine.to_json()
        return out


def metrics_json(metrics: Scorecard | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A job's ``metrics`` as a manifest records it: a :class:`Scorecard` serialised, a recorded mapping copied.

    The manifest writers call this; a mapping is what an earlier manifest recorded (kept as it was).
    """
    if metrics is None:
        return None
    if isinstance(metrics, Scorecard):
        return metrics.to_json()
    from fly64_manifest.models import thaw

    return thaw(metrics)
