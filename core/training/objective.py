"""One training step's losses for each method (psd, triplet, infonce), without the optimiser.

psd may add a contrastive term (``loss.contrastive_weight``): the infonce baseline's own loss,
over every pair of the batch, labelled or not, so that pairs teach alignment even where neither a
label nor a confident teacher does.

Kept apart from the loop so that the loop stays short and each method's recipe reads in one place.
"""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import torch

from core.training.config import LossConfig
from core.training.distributed import DistContext
from core.training.losses import (
    MINERS,
    CrossModalTriplet,
    InfoNCE,
    LabelLoss,
    PairDistance,
    SoftCrossModalTriplet,
)
from core.training.model import AVEmbedder
from core.training.schedules import soft_weight
from core.training.teacher import EmaTeacher, SelfTeacher


@dataclass
class StepOutput:
    total: torch.Tensor
    parts: dict[str, torch.Tensor]  # each weighted-in component, unweighted
    za: torch.Tensor
    zv: torch.Tensor
    soft: torch.Tensor  # [n, n] alignment target the step used (S for psd, hard labels otherwise)
    annotated: torch.Tensor  # [n] bool


def draw_annotated(
    n: int, r: float, generator: torch.Generator, labelled: torch.Tensor | None = None
) -> torch.Tensor:
    """The annotated subset A as a boolean mask: ceil(r * L) of the batch's L labelled pairs
    (all n when ``labelled`` is None), chosen at random. Unlabelled pairs are never in A."""
    perm = torch.randperm(n, generator=generator)
    if labelled is not None:
        perm = perm[labelled.cpu()[perm]]
    k = min(len(perm), math.ceil(r * len(perm) - 1e-9))
    mask = torch.zeros(n, dtype=torch.bool)
    mask[perm[:k]] = True
    return mask


def pair_confidence(qa: torch.Tensor, qv: torch.Tensor) -> torch.Tensor:
    """[n] a pair's confidence: the largest class probability of its two modalities' mean."""
    return (0.5 * (qa + qv)).amax(dim=1)


class Objective:
    """``overlap_teacher``: on a CPU with one torch thread, run the EMA teacher's forward in a
    second thread while the student's runs (torch releases the GIL inside ops), so a second core
    does useful work. The two only read their own weights and the teacher draws no random numbers,
    so results are bit-identical. With more torch threads the cores are already shared out inside
    each op, and a second thread's OpenMP team would only contend with the first."""

    def __init__(self, cfg: LossConfig, overlap_teacher: bool = True):
        if cfg.mining not in MINERS:
            raise ValueError(f"unknown mining {cfg.mining!r}; choose {', '.join(MINERS)}")
        self.cfg = cfg
        self._pool = ThreadPoolExecutor(1, "teacher") if overlap_teacher else None
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
        use_soft: bool = True,
    ) -> StepOutput:
        """Losses of one batch. ``labels`` covers the whole batch (-1 for unlabelled pairs, which
        psd puts in U and triplet must not be given); with ``dist`` active, ``audio`` and
        ``visual`` are this rank's shard of it (``dist.shard``) and the embeddings, logits and
        teacher outputs are gathered so that the loss is the full batch's on every rank.
        ``use_soft=False`` (psd's warm-up, ``loss.soft_start``) leaves out l_soft and the
        teacher."""
        dist = dist or DistContext()
        n = len(labels)
        method = self.cfg.method
        labelled = labels >= 0
        all_labelled = bool(labelled.all())
        if method == "psd":
            annotated = draw_annotated(n, r, generator, None if all_labelled else labelled)
        else:
            annotated = labelled.cpu()
        annotated = annotated.to(audio.device)
        teacher_labels = None
        if method == "psd" and use_soft:
            assert teacher is not None, "psd needs a teacher"
            teacher_labels = self._teacher_labels(
                teacher, audio, visual, (~annotated)[dist.shard(n)], model.head.out_features
            )
        za, zv = model(audio, visual)
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
        a = annotated
        parts = {
            "lab": self.labels(logits_a[a], logits_v[a], labels[a]),
            "cross": self.cross(za[a], zv[a], labels[a]),
        }
        onehot = torch.nn.functional.one_hot(labels.clamp_min(0), logits_a.shape[1]).float()
        onehot = onehot * labelled[:, None]
        if method == "triplet":
            if not all_labelled:
                raise ValueError("triplet was given unlabelled pairs")
            total = parts["lab"] + parts["cross"]
            return StepOutput(total, parts, za, zv, onehot @ onehot.T, annotated)

        if teacher_labels is None:  # warm-up: no soft labels yet
            qa = qv = torch.where(a[:, None], onehot, 0.0)
            s = qa @ qv.T
            parts["soft"] = za.sum() * 0.0
        else:
            qa, qv = teacher_labels.result()
            qa = torch.where(a[:, None], onehot, dist.gather(qa, n))
            qv = torch.where(a[:, None], onehot, dist.gather(qv, n))
            usable = None
            if self.cfg.confidence > 0:  # unsure soft labels take no part in l_soft
                usable = a | (pair_confidence(qa, qv) >= self.cfg.confidence)
            s = qa @ qv.T
            anchors = ~a if usable is None else ~a & usable
            parts["soft"] = self.soft(za, zv, s, anchors, usable)
        parts["dis"] = self.pair(za, zv)
        if self.cfg.contrastive_weight > 0:  # left out at 0, so the paper's psd is untouched
            targets = None
            if self.cfg.contrastive_soft > 0:
                targets = (self.cfg.contrastive_soft * s).fill_diagonal_(1.0)
            parts["contrastive"] = self.infonce(za, zv, targets)
        share = 1.0 if all_labelled else float(labelled.float().mean())
        total = (
            parts["lab"]
            + parts["cross"]
            + soft_weight(self.cfg.lambda_soft, r * share) * parts["soft"]
            + self.cfg.lambda_dis * parts["dis"]
        )
        if "contrastive" in parts:
            total = total + self.cfg.contrastive_weight * parts["contrastive"]
        return StepOutput(total, parts, za, zv, s, annotated)

    def _teacher_labels(
        self,
        teacher: EmaTeacher | SelfTeacher,
        audio: torch.Tensor,
        visual: torch.Tensor,
        unannotated: torch.Tensor,
        num_classes: int,
    ) -> Future[tuple[torch.Tensor, torch.Tensor]]:
        """The teacher's class probabilities for the unannotated rows (zeros elsewhere, where the
        one-hot labels take over): the teacher's forward is skipped for annotated pairs. Started
        in the second thread when it may overlap with the student's forward (class docstring): a
        ``SelfTeacher`` is the student itself and must not run beside it."""

        def run() -> tuple[torch.Tensor, torch.Tensor]:
            qa = audio.new_zeros(len(audio), num_classes)
            qv = audio.new_zeros(len(audio), num_classes)
            if unannotated.any():
                qa[unannotated], qv[unannotated] = teacher.probabilities(
                    audio[unannotated], visual[unannotated], self.cfg.temperature
                )
            return qa, qv

        beside = (
            isinstance(teacher, EmaTeacher)
            and audio.device.type == "cpu"
            and torch.get_num_threads() == 1
        )
        if self._pool is not None and beside:
            return self._pool.submit(run)
        done: Future[tuple[torch.Tensor, torch.Tensor]] = Future()
        done.set_result(run())
        return done
