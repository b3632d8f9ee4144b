"""Pseudo-labels: the class a trained head predicts for each unlabelled train pair.

One computation for both sources: the training loop at each epoch's end (``pseudo_labels``), and
a checkpoint read back later (``checkpoint_pseudo_labels``), so the app's Labels tab shows the
same predictions for a live run, a finished run reopened, or a loaded checkpoint. psd's come from
its teacher (the EMA copy a checkpoint stores, or the student itself for the self-teacher),
triplet's from the student's label head; infonce trains no head and has none.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from core.data.dataset import AVDataset, Split
from core.data.labels import hide_labels
from core.errors import UserError
from core.training.checkpoint import Checkpoint
from core.training.config import RunConfig
from core.training.events import PseudoLabels
from core.training.model import AVEmbedder
from core.training.teacher import predict_classes

PREDICT_ROWS = 65_536  # unlabelled pairs predicted at a time (300 MB of 1,152-d features)


class NoPseudoLabels(UserError):
    """This model cannot give pseudo-labels; the message says why, for the user."""


def pseudo_labels(
    epoch: int,
    model: AVEmbedder,
    teacher: Any,
    config: RunConfig,
    split: Split,
    unlabelled: np.ndarray,
    device: torch.device | str = "cpu",
) -> PseudoLabels | None:
    """The pseudo-labels of ``split``'s ``unlabelled`` pairs after ``epoch`` (numbered from 1):
    one forward of psd's teacher (triplet: the student's head) over them; None when there are
    none or no head is trained."""
    if not len(unlabelled) or config.loss.method == "infonce":
        return None
    source_model = getattr(teacher, "model", model)  # EMA teacher's copy; self-teacher: student
    # In chunks, so that memory stays bounded when the train split is streamed from disk.
    parts = []
    for start in range(0, len(unlabelled), PREDICT_ROWS):
        rows = unlabelled[start : start + PREDICT_ROWS]
        audio = torch.as_tensor(split.audio[rows], device=device)
        visual = torch.as_tensor(split.visual[rows], device=device)
        parts.append(predict_classes(source_model, audio, visual, config.loss.temperature))
    predicted = np.concatenate([p for p, _ in parts])
    confidence = np.concatenate([c for _, c in parts])
    true = split.true_labels[unlabelled] if split.true_labels is not None else None
    known = true >= 0 if true is not None else None
    accuracy = (
        float((predicted[known] == true[known]).mean())
        if true is not None and known is not None and known.any()
        else None
    )
    return PseudoLabels(
        epoch=epoch,
        indices=unlabelled.astype(np.int64),
        predicted=predicted,
        confidence=confidence,
        source="teacher" if teacher is not None else "student",
        true_labels=true,
        accuracy=accuracy,
    )


class _StoredTeacher:
    """A checkpoint's EMA teacher: only its ``model`` is needed to predict."""

    def __init__(self, model: AVEmbedder):
        self.model = model


def checkpoint_pseudo_labels(ckpt: Checkpoint, data: AVDataset) -> PseudoLabels | None:
    """The pseudo-labels ``ckpt`` gives ``data``'s unlabelled train pairs (the dataset's own, and
    those its run hid with ``data.label_fraction``), as its run made them after epoch
    ``ckpt.epoch``; None when ``data`` has no such pairs. ``NoPseudoLabels`` says why not."""
    config = ckpt.config
    if config.loss.method == "infonce":
        raise NoPseudoLabels("infonce trains no class head to predict classes with")
    split = hide_labels(data.train, config.data.label_fraction, config.data.label_seed)
    unlabelled = np.flatnonzero(~split.labelled)
    if not len(unlabelled):
        return None
    student = ckpt.build_model("cpu")
    teacher: Any = None
    if config.loss.method == "psd":
        teacher = _StoredTeacher(student)  # the self-teacher predicts with the student
        if config.loss.teacher == "ema":
            if not ckpt.teacher:
                raise NoPseudoLabels(
                    f"{ckpt.path or 'the checkpoint'} keeps no teacher weights to predict with"
                )
            model = copy.deepcopy(student)
            try:
                model.load_state_dict(ckpt.teacher)
            except RuntimeError:
                raise NoPseudoLabels(
                    f"{ckpt.path or 'the checkpoint'}: its teacher weights do not fit its model"
                ) from None
            teacher = _StoredTeacher(model.eval())
    with torch.no_grad():
        return pseudo_labels(ckpt.epoch, student, teacher, config, split, unlabelled)
