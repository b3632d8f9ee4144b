"""An epoch's test embeddings (``EpochEmbeddings``) and their 2-D layouts for the map: coordinates,
match ranks and a KD-tree.

Qt-free, so the training process (``avexplorer.jobs.training_process``) can compute each epoch's PCA
layout next to the embeddings it already makes: the GUI thread then only draws. UMAP and t-SNE
layouts are computed on request in the app's projection process (``avexplorer.jobs.projection``),
which makes only the coordinates: ranks and the KD-tree are made here, by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Layout:
    """A 2-D map of one epoch's embeddings: audio rows first, then visual rows."""

    epoch: int
    method: str
    coords: np.ndarray  # [2N, 2]
    ranks: np.ndarray  # [2N] rank (1 = first) of each item's true cross-modal match
    tree: Any = field(default=None, repr=False, compare=False)  # KD-tree of coords, for hit tests

    def build_tree(self) -> None:
        """Build the KD-tree hover and click use (off the GUI thread; ~0.1 s at 200k points)."""
        if self.tree is None:
            from scipy.spatial import cKDTree

            self.tree = cKDTree(np.asarray(self.coords, dtype=np.float64))

    def nearest(self, x: float, y: float, radius: float) -> int | None:
        """Row of the point nearest to (x, y) within ``radius`` (data units), or None."""
        self.build_tree()
        dist, j = self.tree.query((x, y), distance_upper_bound=radius)
        return int(j) if np.isfinite(dist) else None


def match_ranks(audio: np.ndarray, visual: np.ndarray) -> np.ndarray:
    """Rank (1 = first) of each item's own clip in the other modality: audio rows, then visual
    (``core.evaluation.metrics.partner_ranks``: ties count against the item)."""
    from core.evaluation.metrics import partner_ranks

    return np.concatenate([partner_ranks(audio, visual), partner_ranks(visual, audio)])


def compute_layout(emb: Any, method: str, previous: np.ndarray | None, seed: int = 0) -> Layout:
    """The layout of ``emb`` (``.epoch``, ``.audio``, ``.visual``), aligned to ``previous``."""
    return layout_of(emb.epoch, emb.audio, emb.visual, method, previous, seed)


def layout_of(
    epoch: int,
    audio: np.ndarray,
    visual: np.ndarray,
    method: str,
    previous: np.ndarray | None,
    seed: int = 0,
) -> Layout:
    """The layout of one epoch's audio and visual embeddings, aligned to ``previous``."""
    from core.exploration.projection import project

    coords = project(np.vstack([audio, visual]), method, previous, seed)  # type: ignore[arg-type]
    return layout_with_ranks(epoch, method, coords, audio, visual)


def layout_with_ranks(
    epoch: int, method: str, coords: np.ndarray, audio: np.ndarray, visual: np.ndarray
) -> Layout:
    """A ``Layout`` of ``coords`` (audio rows, then visual) with match ranks and its KD-tree."""
    layout = Layout(epoch, method, coords, match_ranks(audio, visual))
    layout.build_tree()
    return layout


@dataclass
class EpochEmbeddings:
    """Test-split embeddings of one epoch's model, made from the epoch's checkpoint."""

    epoch: int  # the weights are those after this epoch (from 1; 0: before any, or not a run)
    audio: np.ndarray  # [N, d] float32, L2-normalised
    visual: np.ndarray  # [N, d]
    model: Any  # the torch module (CPU, eval mode) that made them
    checkpoint: Path | None = None
    layout: Layout | None = None  # their PCA layout, aligned to the previous epoch's
