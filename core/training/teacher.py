"""The teacher that turns unannotated pairs into soft class probabilities.

``EmaTeacher`` is a frozen copy of the student updated as an exponential moving average after each
optimiser step (DINO / MoCo style). ``SelfTeacher`` uses the student's own detached predictions.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from core.training.model import AVEmbedder


class SelfTeacher:
    def __init__(self, student: AVEmbedder):
        self.student = student

    @torch.no_grad()
    def probabilities(
        self, audio: torch.Tensor, visual: torch.Tensor, temperature: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return _class_probs(self.student, audio, visual, temperature)

    def update(self) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class EmaTeacher:
    def __init__(self, student: AVEmbedder, momentum: float):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"teacher momentum must be in [0, 1), got {momentum}")
        self.student = student
        self.momentum = momentum
        self.model = copy.deepcopy(student).eval()
        self.model.requires_grad_(False)

    @torch.no_grad()
    def probabilities(
        self, audio: torch.Tensor, visual: torch.Tensor, temperature: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return _class_probs(self.model, audio, visual, temperature)

    @torch.no_grad()
    def update(self) -> None:
        """teacher <- m * teacher + (1 - m) * student, for every parameter and float buffer."""
        t_params = list(self.model.parameters())
        s_params = list(self.student.parameters())
        torch._foreach_lerp_(t_params, s_params, 1.0 - self.momentum)
        for t, s in zip(self.model.buffers(), self.student.buffers(), strict=True):
            t.copy_(s)

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)


@torch.no_grad()
def predict_classes(
    model: AVEmbedder,
    audio: torch.Tensor,
    visual: torch.Tensor,
    temperature: float = 1.0,
    chunk: int = 8192,
) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-labels of pairs: (class [N] int64, confidence [N] float32) from ``model``'s head,
    the class with the largest probability averaged over the two modalities (as
    ``core.training.objective.pair_confidence``), in eval mode, in chunks of ``chunk`` pairs."""
    preds, confs = [], []
    for i in range(0, len(audio), chunk):
        qa, qv = _class_probs(model, audio[i : i + chunk], visual[i : i + chunk], temperature)
        conf, pred = (0.5 * (qa + qv)).max(dim=1)
        preds.append(pred.cpu().numpy())
        confs.append(conf.float().cpu().numpy())
    if not preds:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(preds).astype(np.int64), np.concatenate(confs)


def _class_probs(
    model: nn.Module, audio: torch.Tensor, visual: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    was_training = model.training
    model.eval()  # no dropout in the teacher's predictions
    za, zv = model(audio, visual)
    qa = torch.softmax(model.classify(za) / temperature, dim=1)
    qv = torch.softmax(model.classify(zv) / temperature, dim=1)
    model.train(was_training)
    return qa, qv


def make_teacher(kind: str, student: AVEmbedder, momentum: float) -> EmaTeacher | SelfTeacher:
    if kind == "ema":
        return EmaTeacher(student, momentum)
    if kind == "self":
        return SelfTeacher(student)
    raise ValueError(f"unknown teacher {kind!r}; choose ema or self")
