"""One training step's losses for each method (psd, triplet, infonce), without the optimiser.

Kept apart from the loop so that the loop stays short and each method's recipe reads in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.config import LossConfig
from core.losses import (
    MINERS,
    CrossModalTriplet,
    InfoNCE,
    LabelLoss,
    PairDistance,
    SoftCrossModalTriplet,
)
from core.model import AVEmbedder
from core.schedules import soft_weight
from core.teacher import EmaTeacher, SelfTeacher


@dataclass
class StepOutput:
    total: torch.Tensor
    parts: dict[str, torch.Tensor]  # each weighted-in component, unweighted
    za: torch.Tensor
    zv: torch.Tensor
    soft: torch.Tensor  # [n, n] alignment target the step used (S for psd, hard labels otherwise)
    annotated: torch.Tensor  # [n] bool


def draw_annotated(n: int, r: float, generator: torch.Generator) -> torch.Tensor:
    """The annotated subset A: ceil(r * n) pairs chosen at random, as a boolean mask."""
    k = min(n, math.ceil(r * n - 1e-9))
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.randperm(n, generator=generator)[:k]] = True
    return mask


class Objective:
    def __init__(self, cfg: LossConfig):
        if cfg.mining not in MINERS:
            raise ValueError(f"unknown mining {cfg.mining!r}; choose {', '.join(MINERS)}")
        self.cfg = cfg
        self.labels = LabelLoss()
        self.cross = CrossModalTriplet(cfg.margin, MINERS[cfg.mining])
        self.soft = SoftCrossModalTriplet(cfg.margin)
        self.pair = PairDistance()
        self.infonce = InfoNCE(cfg.infonce_temperature)

    def __call__(
        self,
        model: AVEmbedder,
        teacher: EmaTeacher | SelfTeacher | None,
        audio: torch.Tensor,
        visual: torch.Tensor,
        labels: torch.Tensor,
        r: float,
        generator: torch.Generator,
    ) -> StepOutput:
        za, zv = model(audio, visual)
        n = len(labels)
        if self.cfg.method == "infonce":
            loss = self.infonce(za, zv)
            eye = torch.eye(n, device=za.device)
            return StepOutput(
                loss, {"infonce": loss}, za, zv, eye, torch.zeros(n, dtype=torch.bool)
            )

        annotated = (
            draw_annotated(n, r, generator)
            if self.cfg.method == "psd"
            else torch.ones(n, dtype=torch.bool)
        ).to(za.device)
        a = annotated
        parts = {
            "lab": self.labels(model.classify(za[a]), model.classify(zv[a]), labels[a]),
            "cross": self.cross(za[a], zv[a], labels[a]),
        }
        onehot = torch.nn.functional.one_hot(labels, model.head.out_features).float()
        if self.cfg.method == "triplet":
            total = parts["lab"] + parts["cross"]
            return StepOutput(total, parts, za, zv, onehot @ onehot.T, annotated)

        assert teacher is not None, "psd needs a teacher"
        qa, qv = teacher.probabilities(audio, visual, self.cfg.temperature)
        qa = torch.where(a[:, None], onehot, qa)
        qv = torch.where(a[:, None], onehot, qv)
        s = qa @ qv.T
        parts["soft"] = self.soft(za, zv, s, ~a)
        parts["dis"] = self.pair(za, zv)
        total = (
            parts["lab"]
            + parts["cross"]
            + soft_weight(self.cfg.lambda_soft, r) * parts["soft"]
            + self.cfg.lambda_dis * parts["dis"]
        )
        return StepOutput(total, parts, za, zv, s, annotated)
