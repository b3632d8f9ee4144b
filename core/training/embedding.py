"""Embedding feature arrays with a trained model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from core.atomic import atomic_write
from core.data.dataset import Split
from core.errors import UserError
from core.training.model import AVEmbedder


@torch.inference_mode()
def embed_features(
    model: AVEmbedder,
    features: np.ndarray,
    modality: str,
    device: torch.device | str = "cpu",
    batch: int = 4096,
) -> np.ndarray:
    """[N, d] float32 L2-normalised embeddings of one modality's features ("audio" or "visual")."""
    if modality not in ("audio", "visual"):
        raise ValueError(f"modality must be audio or visual, got {modality!r}")
    was_training = model.training
    model.eval()
    embed = model.embed_audio if modality == "audio" else model.embed_visual
    out = [
        embed(torch.as_tensor(features[i : i + batch], dtype=torch.float32, device=device)).cpu()
        for i in range(0, len(features), batch)
    ]
    model.train(was_training)
    dim = model.head.in_features
    z = torch.cat(out).numpy() if out else np.zeros((0, dim), np.float32)
    # The one place embeddings are made: NaN here would turn every score, map and export made
    # from them into NaN with no error, so it stops here.
    finite = np.isfinite(z).all(axis=1)
    if not finite.all():
        row, n = int(np.flatnonzero(~finite)[0]), int((~finite).sum())
        raise UserError(
            f"the model gives {modality} embeddings that are not finite numbers ({n} of {len(z)}, "
            f"the first for row {row}): its weights or these features overflow"
        )
    return z


def embed_split(
    model: AVEmbedder, split: Split, device: torch.device | str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """(audio, visual) embeddings of a split, each [N, d] float32 and L2-normalised."""
    return (
        embed_features(model, split.audio, "audio", device),
        embed_features(model, split.visual, "visual", device),
    )


def save_embeddings(
    path: str | Path,
    audio: np.ndarray,
    visual: np.ndarray,
    split: Split,
    class_names: Sequence[str],
    epochs_trained: int,
) -> Path:
    """Write a split's embeddings to an ``.npz``: the one format the CLI and the app export.

    Keys: ``audio``, ``visual`` ([N, d] float32, L2-normalised), ``labels`` (int64),
    ``class_names``, ``paths`` (the clip files, "" when the data has none) and ``epochs_trained``
    (how many epochs the model had trained: 40 for the model shown "after epoch 40").
    """
    path = Path(path)
    paths = split.paths if split.paths is not None else ("",) * len(split)
    with atomic_write(path) as f:  # a failed write leaves an earlier file there as it was
        np.savez_compressed(
            f,
            audio=np.asarray(audio, np.float32),
            visual=np.asarray(visual, np.float32),
            labels=np.asarray(split.labels, np.int64),
            class_names=np.array(list(class_names)),
            paths=np.array(list(paths)),
            epochs_trained=np.int64(epochs_trained),
        )
    return path
