"""An epoch's test embeddings (``EpochEmbeddings``) and their 2-D layouts for the map (coordinates
and a KD-tree), and the match ranks of an epoch's items.

Qt-free, so the training process (``avexplorer.jobs.training_process``) can compute each epoch's PCA
layout next to the embeddings it already makes: the GUI thread then only draws. UMAP and t-SNE
layouts are computed on request in the app's projection process (``avexplorer.jobs.projection``),
which makes only the coordinates: the KD-tree is made here, by the caller.

A layout holds no ranks: they need every item against every other (minutes at 100k points, where
a PCA layout takes a second), so the map is drawn first and the ranks, which depend only on the
embeddings, are computed once per epoch in the background (``match_ranks``, chunked) and kept
with the epoch's embeddings (``Embeddings.set_ranks``) for every layout of it.
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
    ranks: np.ndarray | None = None  # [2N] match ranks; only where given (the app keeps them
    # per epoch: ``Embeddings.ranks_for``)
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


def match_ranks(audio: np.ndarray, visual: np.ndarray, progress: Any = None) -> np.ndarray:
    """Rank (1 = first) of each item's own clip in the other modality: audio rows, then visual
    (``core.evaluation.metrics.partner_ranks``: ties count against the item; chunked, so memory
    stays bounded). ``progress(done, total)`` is called after each chunk of both directions."""
    from core.evaluation.metrics import partner_ranks

    n = len(audio)

    def part(offset: int) -> Any:
        return None if progress is None else (lambda done, _total: progress(offset + done, 2 * n))

    return np.concatenate(
        [
            partner_ranks(audio, visual, progress=part(0)),
            partner_ranks(visual, audio, progress=part(n)),
        ]
    )


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

    # the rows as two blocks: a PCA needs no stacked copy (UMAP and t-SNE make one)
    coords = project([audio, visual], method, previous, seed)  # type: ignore[arg-type]
    return layout_with_tree(epoch, method, coords)


def layout_with_tree(epoch: int, method: str, coords: np.ndarray) -> Layout:
    """A ``Layout`` of ``coords`` (audio rows, then visual) with its KD-tree built."""
    layout = Layout(epoch, method, coords)
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
    ranks: np.ndarray | None = None  # [2N] match ranks (``match_ranks``), once computed
