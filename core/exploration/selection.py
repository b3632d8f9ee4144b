"""Selections of map items: which audio and which visual embeddings of a split a user picked.

A ``Selection`` holds two boolean masks over the clips of one split (the map shows the test
split): ``audio[i]`` is True when clip i's audio point is selected, ``visual[i]`` likewise. The
two sides of a clip can differ, which is what "pairs a selection splits" means. Everything here is
plain numpy and Qt-free: the app's state holds the current selection, the map and the table make
new ones with these functions, and the selection view shows ``summary``.

Point-in-polygon is even-odd ray casting vectorised over the points, edge by edge, on the points
whose y lies in the edge's span only (found by binary search in the points sorted by y). A lasso
edge spans a thin band of the plot, so the work per edge is small and the whole test costs about
one pass over the points per crossing of a horizontal line with the lasso, not one per edge.
matplotlib's ``Path.contains_points`` would do the same in C, but it is not a dependency of the
project and this stays within budget (see docs/benchmarks.md, section Selection).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import UserError

MODES = ("replace", "add", "subtract")


class SelectionError(UserError, ValueError):
    """A selection that cannot be used or written; the message says which and why."""


@dataclass(frozen=True, eq=False)
class Selection:
    """Selected audio and visual items of a split of ``n`` clips (boolean masks [n])."""

    audio: np.ndarray
    visual: np.ndarray

    def __post_init__(self) -> None:
        a = np.asarray(self.audio, dtype=bool).reshape(-1)
        v = np.asarray(self.visual, dtype=bool).reshape(-1)
        if len(a) != len(v):
            raise SelectionError(f"audio mask has {len(a)} entries, visual mask {len(v)}")
        object.__setattr__(self, "audio", a)
        object.__setattr__(self, "visual", v)

    # ----- construction ------------------------------------------------------------------------
    @classmethod
    def empty(cls, n: int) -> Selection:
        return cls(np.zeros(n, bool), np.zeros(n, bool))

    @classmethod
    def of_points(cls, mask: np.ndarray) -> Selection:
        """From a mask over map points [2n]: audio rows first, then visual rows (as a Layout)."""
        mask = np.asarray(mask, dtype=bool).reshape(-1)
        if len(mask) % 2:
            raise SelectionError(f"a map has audio and visual rows alike, got {len(mask)} points")
        n = len(mask) // 2
        return cls(mask[:n], mask[n:])

    @classmethod
    def of_clips(cls, n: int, indices: Sequence[int] | np.ndarray) -> Selection:
        """Both sides of the clips at ``indices``."""
        mask = np.zeros(n, bool)
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            bad = idx[(idx < 0) | (idx >= n)][0]
            raise SelectionError(f"clip index {bad} is out of range 0..{n - 1}")
        mask[idx] = True
        return cls(mask, mask.copy())

    @classmethod
    def of_class(cls, labels: np.ndarray, class_id: int) -> Selection:
        mask = np.asarray(labels) == class_id
        return cls(mask, mask.copy())

    # ----- reading -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.audio)

    def points(self) -> np.ndarray:
        """Mask over map points [2n], audio rows first."""
        return np.concatenate([self.audio, self.visual])

    def clips(self) -> np.ndarray:
        """Indices of the clips with either side selected."""
        return np.flatnonzero(self.audio | self.visual)

    @property
    def count(self) -> int:
        """Selected items (an audio and a visual of one clip count as two)."""
        return int(self.audio.sum() + self.visual.sum())

    def __bool__(self) -> bool:
        return bool(self.audio.any() or self.visual.any())

    def combine(self, other: Selection, mode: str = "replace") -> Selection:
        """``other`` alone, this plus ``other``, or this minus ``other``."""
        if mode not in MODES:
            raise SelectionError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if len(other) != len(self):
            raise SelectionError(f"selections of {len(self)} and {len(other)} clips")
        if mode == "replace":
            return other
        if mode == "add":
            return Selection(self.audio | other.audio, self.visual | other.visual)
        return Selection(self.audio & ~other.audio, self.visual & ~other.visual)

    def equals(self, other: Selection | None) -> bool:
        return (
            other is not None
            and np.array_equal(self.audio, other.audio)
            and np.array_equal(self.visual, other.visual)
        )


# ----- geometry ------------------------------------------------------------------------------
def points_in_polygon(xy: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Mask [M] of the points [M, 2] inside a closed polygon [K, 2] (even-odd rule).

    A lasso is closed from its last vertex back to its first. Fewer than 3 vertices: nothing.
    For many tests on the same points (a map's lassos), ``PolygonIndex`` sorts them once.
    """
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    inside = np.zeros(len(xy), bool)
    if len(poly) < 3 or not len(xy):
        return inside
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    cand = np.flatnonzero(
        (xy[:, 0] >= lo[0]) & (xy[:, 0] <= hi[0]) & (xy[:, 1] >= lo[1]) & (xy[:, 1] <= hi[1])
    )
    if len(cand):
        order = cand[np.argsort(xy[cand, 1])]
        inside[order] = _crossed(xy[order, 0], xy[order, 1], poly)
    return inside


class PolygonIndex:
    """Points sorted by y once, for many point-in-polygon tests on the same points: each test
    then costs the edges' bands only (no sort, no pass over the points outside the lasso's
    y-range)."""

    def __init__(self, xy: np.ndarray) -> None:
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        self.n = len(xy)
        self.order = np.argsort(xy[:, 1])
        self.xs = np.ascontiguousarray(xy[self.order, 0])
        self.ys = np.ascontiguousarray(xy[self.order, 1])

    def inside(self, polygon: np.ndarray) -> np.ndarray:
        """Mask [M] of the points inside ``polygon``, as ``points_in_polygon``."""
        poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
        inside = np.zeros(self.n, bool)
        if len(poly) < 3 or not self.n:
            return inside
        s = int(np.searchsorted(self.ys, poly[:, 1].min(), side="left"))
        e = int(np.searchsorted(self.ys, poly[:, 1].max(), side="right"))
        inside[self.order[s:e]] = _crossed(self.xs[s:e], self.ys[s:e], poly)
        return inside


def _crossed(xs: np.ndarray, ys: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd inside test of points sorted by y (``ys`` ascending) against ``poly``."""
    flips = np.zeros(len(ys), bool)
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    # Half-open spans [min y, max y) so a vertex shared by two edges is crossed once.
    starts = np.searchsorted(ys, np.minimum(y0, y1), side="left")
    stops = np.searchsorted(ys, np.maximum(y0, y1), side="left")
    slope = np.divide(x1 - x0, y1 - y0, out=np.zeros_like(x0), where=y1 != y0)
    for k in np.flatnonzero(stops > starts):  # a flat edge spans no points
        a, b = starts[k], stops[k]
        flips[a:b] ^= xs[a:b] < x0[k] + (ys[a:b] - y0[k]) * slope[k]
    return flips


def points_in_box(xy: np.ndarray, corner: Sequence[float], other: Sequence[float]) -> np.ndarray:
    """Mask [M] of the points [M, 2] inside the axis-aligned box with these opposite corners."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    (xa, ya), (xb, yb) = corner, other
    x0, x1 = sorted((float(xa), float(xb)))
    y0, y1 = sorted((float(ya), float(yb)))
    return (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)


# ----- what a selection holds ------------------------------------------------------------------
@dataclass(frozen=True)
class Summary:
    """What the selection view shows about a selection."""

    audio_per_class: np.ndarray  # [C] selected audio items of each class
    visual_per_class: np.ndarray  # [C]
    mean_similarity: float | None  # mean cosine over distinct pairs of selected items
    split_pairs: np.ndarray  # clip indices with exactly one side selected
    audio_only: int  # of those, how many have only the audio selected

    @property
    def audio(self) -> int:
        return int(self.audio_per_class.sum())

    @property
    def visual(self) -> int:
        return int(self.visual_per_class.sum())


def mean_pairwise_cosine(x: np.ndarray) -> float | None:
    """Mean cosine similarity over the distinct pairs of rows of ``x`` (None below 2 rows).

    Exact without the n x n matrix: the sum over all ordered pairs is |sum of unit rows|^2, and
    the n self-pairs contribute n of it.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n < 2:
        return None
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    u = x / np.where(norms > 0, norms, 1.0)
    total = float(np.square(u.sum(axis=0)).sum())
    own = float(np.square(u).sum())
    return (total - own) / (n * (n - 1))


def split_pairs(sel: Selection) -> np.ndarray:
    """Clips whose audio is selected and visual not, or the reverse."""
    return np.flatnonzero(sel.audio ^ sel.visual)


def summary(
    sel: Selection,
    labels: np.ndarray,
    num_classes: int,
    audio: np.ndarray | None = None,
    visual: np.ndarray | None = None,
) -> Summary:
    """Counts per class and modality, the pairs split, and (given the embeddings [n, d], unit
    rows as the app keeps them) the mean cosine between the selected items, audio and visual
    together.

    The similarity needs only the sum of the selected rows (see ``mean_pairwise_cosine``), taken
    as a product with the mask: no copy of the selected rows, so a selection of 100k items costs
    one pass over the embeddings.
    """
    labels = np.asarray(labels, dtype=np.int64)
    sim = None
    n = sel.count
    if audio is not None and visual is not None and n >= 2:
        total = sel.audio.astype(audio.dtype) @ audio + sel.visual.astype(visual.dtype) @ visual
        sim = (float(np.dot(total, total)) - n) / (n * (n - 1))
    split = split_pairs(sel)
    return Summary(
        np.bincount(labels[sel.audio], minlength=num_classes),
        np.bincount(labels[sel.visual], minlength=num_classes),
        sim,
        split,
        int(sel.audio[split].sum()),
    )


def mean_query(embeddings: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """The unit-length mean of the selected embeddings (None when none is selected or they
    cancel out): a query that stands for the group."""
    rows = np.asarray(embeddings, dtype=np.float32)[np.asarray(mask, bool)]
    if not len(rows):
        return None
    m = rows.mean(axis=0)
    norm = float(np.linalg.norm(m))
    return (m / norm).astype(np.float32) if norm > 1e-12 else None
