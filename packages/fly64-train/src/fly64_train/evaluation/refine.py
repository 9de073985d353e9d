"""Per-scan refinement ("PINN + refine", docs/evaluation.md): fine-tune a trained model on a test split's
own diffraction, without labels, then reconstruct that split with the fine-tuned copy.

The loss is training's (the Poisson NLL of the model's forward path, with the photon split the bundle
was trained with): the information the iterative method uses (the patterns, the positions, the
probe), and no more. Framework-free: the backend's ``LoadedModel.refined`` takes the optimisation
steps (the torch backend implements it; a backend without it is refused with one line).

For the information score the refinement must not see half B of the photons it is scored on:
:func:`refine_on_half_a` fine-tunes a second copy on half A alone (fed as the network sees it, with
the intensity scale of half A's counts), and that copy is scored on half B.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fly64_train.core.seam import LoadedModel
    from fly64_train.data.reader import DatasetInfo
    from fly64_train.evaluation.scorecard import RefinedScorecard

#: Patterns per refinement step when ``RefineConfig.batch_size`` is not given: training's default
#: (:data:`fly64_train.training.config.BATCH_PATTERNS`), so a step costs what a training step costs.
REFINE_BATCH_PATTERNS = 16


@dataclass
class RefineConfig:
    """How to fine-tune a trained model on a test split's own diffraction."""

    steps: int = 0
    """Optimisation steps (batches) of fine-tuning; 0: no refinement."""
    lr: float = 1e-4
    """Adam learning rate of the fine-tuning (a fresh Adam: a bundle keeps no optimiser state)."""
    batch_size: int | None = None
    """Groups per step; ``None``: :data:`REFINE_BATCH_PATTERNS` patterns' worth, as in training."""
    count_split: float | None = None
    """Photon split of the loss, as in training (the CNN sees this fraction, the loss scores the rest);
    ``None``: the full counts. The evaluation passes the bundle's recorded ``count_split``."""
    seed: int = 0
    """Seed of the batch order and the photon splits of the fine-tuning."""

    def check(self) -> None:
        """Refuse values no refinement can use, naming the field."""
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"refine steps must be a whole number >= 0, got {self.steps!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"refine lr must be a positive finite number, got {self.lr!r}")
        if self.batch_size is not None and (isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int)
                                            or self.batch_size < 1):
            raise ValueError(f"refine batch_size must be >= 1, got {self.batch_size!r}")
        if self.count_split is not None and not 0 < self.count_split < 1:
            raise ValueError(f"refine count_split must be in (0, 1) or None, got {self.count_split!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"refine seed must be a whole number >= 0, got {self.seed!r}")

    def as_json(self) -> dict[str, Any]:
        """The settings a manifest records beside the refined scores (``metrics.refine.refine``)."""
        return {"steps": self.steps, "lr": self.lr, "batch_size": self.batch_size, "count_split": self.count_split,
                "seed": self.seed}

    def groups_per_step(self, gridsize: int) -> int:
        """``batch_size``, or :data:`REFINE_BATCH_PATTERNS` patterns' worth of groups."""
        return self.batch_size if self.batch_size is not None else max(1, REFINE_BATCH_PATTERNS // gridsize**2)


def refine_model(model: LoadedModel, test_path: str | os.PathLike | DatasetInfo, cfg: RefineConfig,
                 *, neighbor_count: int,
                 grouping_seed: int, patterns: Any = None, intensity_scale: float | None = None) -> LoadedModel:
    """A copy of ``model`` fine-tuned for ``cfg.steps`` steps on ``test_path``'s diffraction (``model`` unchanged).

    ``patterns`` (a function of row indices returning those rows' diffraction amplitudes) replaces the
    file's diffraction, with ``intensity_scale`` the scale of its counts (``counts = (s * amplitude)^2``);
    default: the file's patterns and its recorded scale. The groups are the test split's own
    (gs2: the grouping the evaluation predicts with), read a batch at a time.
    """
    from fly64_data.grouping import make_groups
    from fly64_train.data.reader import dataset_of

    cfg.check()
    refined = getattr(model, "refined", None)
    if refined is None:
        raise ValueError(f"per-scan refinement is not available for this backend's models "
                         f"({type(model).__name__}); refine a torch bundle")
    info = dataset_of(test_path, model.gridsize, neighbor_count)
    if info.patch_size != model.patch_size:
        raise ValueError(f"{info.path}: patterns are {info.patch_size} px but the model was trained on "
                         f"N = {model.patch_size}")
    groups = make_groups(info.ycoords, info.xcoords, model.gridsize, neighbor_count, None, grouping_seed)
    return refined(patterns if patterns is not None else info.diffraction.read_rows, groups.indices,
                   groups.offsets, intensity_scale=float(intensity_scale or info.intensity_scale), cfg=cfg)


def refine_on_half_a(model: LoadedModel, test_path: str | os.PathLike | DatasetInfo, cfg: RefineConfig,
                     *, neighbor_count: int,
                     grouping_seed: int, fraction: float | None = None) -> LoadedModel:
    """A copy of ``model`` fine-tuned on half A of each test pattern's photons only (for the information score).

    Half A is fed as the information score predicts from it, ``sqrt(k_A / f) / s``, and its counts
    ``k_A`` have the rate ``f * s^2 * I``: the fine-tuning sees them through the intensity scale
    ``s * sqrt(f)``, under which those amplitudes are exactly ``k_A``. Half B never enters.
    ``fraction``: the information score's (``COUNT_SPLIT_FRACTION``) when not given.
    """
    from fly64_train.data.reader import dataset_of
    from fly64_train.evaluation.information import _Halves
    from fly64_train.evaluation.metrics import COUNT_SPLIT_FRACTION

    fraction = COUNT_SPLIT_FRACTION if fraction is None else fraction

    info = dataset_of(test_path, model.gridsize, neighbor_count)
    halves = _Halves(info, fraction)
    return refine_model(model, info, cfg, neighbor_count=neighbor_count, grouping_seed=grouping_seed,
                        patterns=halves.seen, intensity_scale=info.intensity_scale * math.sqrt(fraction))


def timed_refinement(model: LoadedModel, test_path: str | os.PathLike | DatasetInfo, cfg: RefineConfig,
                     *, neighbor_count: int,
                     grouping_seed: int) -> tuple[LoadedModel, float]:
    """:func:`refine_model` on the whole split and its wall time in seconds (the fine-tuning alone)."""
    started = time.perf_counter()
    refined = refine_model(model, test_path, cfg, neighbor_count=neighbor_count, grouping_seed=grouping_seed)
    return refined, time.perf_counter() - started


def refined_scorecard(model: LoadedModel, test_path: str | os.PathLike | DatasetInfo, eval_cfg: Any,
                      recorded_config: dict[str, Any]) -> RefinedScorecard:
    """"PINN + refine" scored like plain prediction: the scorecard's ``refine`` (manifest ``metrics["refine"]``).

    ``eval_cfg`` is the resolved :class:`~fly64_train.evaluation.evaluate.EvaluationConfig` (its
    ``refine`` settings, grouping and scoring); the photon split of the loss is the one the bundle
    recorded (``recorded_config["count_split"]``, none for a bundle that recorded none). The images are
    scored from a copy fine-tuned on all photons; the information score (when asked) from a second copy
    fine-tuned on half A only. ``reconstruction.wall_s`` is fine-tuning plus prediction and stitch,
    the time a user waits for the refined object.
    """
    from dataclasses import replace

    from fly64_train.data.reader import dataset_of
    from fly64_train.evaluation.evaluate import n_patterns, reconstruct
    from fly64_train.evaluation.information import model_information
    from fly64_train.evaluation.scorecard import ReconstructionTime, RefinedScorecard
    from fly64_train.evaluation.scoring import score_stitched

    split = recorded_config.get("count_split")
    cfg = replace(eval_cfg.refine, count_split=None if split is None else float(split))
    grouping = {"neighbor_count": eval_cfg.neighbor_count, "grouping_seed": eval_cfg.grouping_seed}
    test_path = dataset_of(test_path, model.gridsize, eval_cfg.neighbor_count)  # opened once for every step
    refined, refine_s = timed_refinement(model, test_path, cfg, **grouping)
    started = time.perf_counter()
    image, weight, truth, peak = reconstruct(refined, test_path, eval_cfg)
    predict_s = time.perf_counter() - started
    scored = score_stitched(image, weight, truth, peak, eval_cfg)
    timing = ReconstructionTime(refine_s + predict_s, n_patterns(test_path),
                                str(getattr(refined, "device", eval_cfg.device)), refine_s=refine_s)
    del refined
    information = None
    if eval_cfg.information:
        half_a = refine_on_half_a(model, test_path, cfg, **grouping)
        information = model_information(half_a, test_path, batch_size=eval_cfg.batch_size, **grouping)
    return RefinedScorecard(scored.amplitude_scores, scored.phase_scores, scored.coverage, cfg, timing,
                            floor=scored.floor, information=information)
