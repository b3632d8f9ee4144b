"""One training step's losses for each method (psd, triplet, infonce), without the optimiser.

Kept apart from the loop so that the loop stays short and each method's recipe reads in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.config import LossConfig
from core.distributed import DistContext
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
        dist: DistContext | None = None,
    ) -> StepOutput:
        """Losses of one batch. ``labels`` covers the whole batch; with ``dist`` active, ``audio``
        and ``visual`` are this rank's shard of it (``dist.shard``) and the embeddings, logits and
        teacher outputs are gathered so that the loss is the full batch's on every rank."""
        dist = dist or DistContext()
        n = len(labels)
        za, zv = model(audio, visual)
        method = self.cfg.method
        if method == "infonce":
            za, zv = dist.gather(za, n), dist.gather(zv, n)
            loss = self.infonce(za, zv)
            eye = torch.eye(n, device=za.device)
            return StepOutput(
                loss, {"infonce": loss}, za, zv, eye, torch.zeros(n, dtype=torch.bool)
            )

        logits_a = dist.gather(model.classify(za), n)
        logits_v = dist.gather(model.classify(zv), n)
        za, zv = dist.gather(za, n), dist.gather(zv, n)
        annotated = (
            draw_annotated(n, r, generator) if method == "psd" else torch.ones(n, dtype=torch.bool)
        ).to(za.device)
        a = annotated
        parts = {
            "lab": self.labels(logits_a[a], logits_v[a], labels[a]),
            "cross": self.cross(za[a], zv[a], labels[a]),
        }
        onehot = torch.nn.functional.one_hot(labels, logits_a.shape[1]).float()
        if method == "triplet":
            total = parts["lab"] + parts["cross"]
            return StepOutput(total, parts, za, zv, onehot @ onehot.T, annotated)

        assert teacher is not None, "psd needs a teacher"
        qa, qv = self._teacher_labels(teacher, audio, visual, (~a)[dist.shard(n)], onehot.shape[1])
        qa = torch.where(a[:, None], onehot, dist.gather(qa, n))
        qv = torch.where(a[:, None], onehot, dist.gather(qv, n))
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

    def _teacher_labels(
        self,
        teacher: EmaTeacher | SelfTeacher,
        audio: torch.Tensor,
        visual: torch.Tensor,
        unannotated: torch.Tensor,
        num_classes: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher's class probabilities for the unannotated rows (zeros elsewhere, where the
        one-hot labels take over): the teacher's forward is skipped for annotated pairs."""
        qa = audio.new_zeros(len(audio), num_classes)
        qv = audio.new_zeros(len(audio), num_classes)
        if unannotated.any():
            qa[unannotated], qv[unannotated] = teacher.probabilities(
                audio[unannotated], visual[unannotated], self.cfg.temperature
            )
        return qa, qv
