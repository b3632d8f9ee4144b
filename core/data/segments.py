"""The time axis of a clip: fixed-length segments, their features, and pooling them.

A clip of ``duration`` seconds cut into segments of ``seconds`` has ``segment_count`` of them (the
last one may be shorter). A feature file stores them padded to the longest clip's count, as
``audio_seg_{split}`` [N, T, Da], ``visual_seg_{split}`` [N, T, Dv] and ``seg_count_{split}`` [N];
per-second files of the lineage (AVE) store 3-D ``audio_{split}`` / ``visual_{split}`` directly.
Either way the segments load as :class:`Segments` beside the clip-level vectors, which are the
segments' masked mean when the file has no clip-level vectors of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_SECONDS = 1.0  # AVE's per-second segments, and extract's default
TAIL_SECONDS = 0.1


@dataclass(frozen=True)
class Segments:
    """Per-segment features of the clips of one split, padded to a common count T."""

    audio: np.ndarray | None  # [N, T, Da] float32 (padding rows are zero)
    visual: np.ndarray | None  # [N, T, Dv]
    count: np.ndarray  # [N] int64: valid segments of each clip, 1..T
    seconds: float = DEFAULT_SECONDS  # length of one segment

    def __post_init__(self) -> None:
        for x in (self.audio, self.visual):
            if x is not None and (x.ndim != 3 or len(x) != len(self.count)):
                raise ValueError(f"segments must be [N, T, D] with N = {len(self.count)}")

    def __len__(self) -> int:
        return len(self.count)

    def take(self, index: np.ndarray) -> Segments:
        a = self.audio[index] if self.audio is not None else None
        v = self.visual[index] if self.visual is not None else None
        return Segments(a, v, self.count[index], self.seconds)

    def of(self, row: int, modality: str) -> np.ndarray:
        """[count, D] valid segments of one clip, one modality ("audio" or "visual")."""
        x = self.audio if modality == "audio" else self.visual
        if x is None:
            raise ValueError(f"these segments have no {modality} features")
        return x[row, : int(self.count[row])]

    def bounds(self, row: int, duration: float | None = None) -> np.ndarray:
        return segment_bounds(int(self.count[row]), self.seconds, duration)


def segment_count(duration: float | None, seconds: float) -> int:
    """Segments of a clip: ceil(duration / seconds), at least one (a still image has one).

    A tail of up to ``TAIL_SECONDS`` (at most half a segment) does not make a segment of its own:
    AAC audio runs that much past the picture (encoder priming and the last frame's padding).
    """
    if seconds <= 0:
        raise ValueError(f"segment length must be positive, got {seconds}")
    if not duration or duration <= 0:
        return 1
    return max(1, math.ceil((duration - min(TAIL_SECONDS, seconds / 2)) / seconds))


def segment_bounds(count: int, seconds: float, duration: float | None = None) -> np.ndarray:
    """[count, 2] (start, end) in seconds; the last segment ends at ``duration`` when given."""
    starts = np.arange(count, dtype=np.float64) * seconds
    ends = starts + seconds
    if duration and count and duration > starts[-1]:
        ends[-1] = min(ends[-1], duration)
    return np.stack([starts, ends], axis=1)


def valid_mask(count: np.ndarray, t: int) -> np.ndarray:
    """[N, T] bool: True for the segments a clip really has."""
    return np.arange(t)[None, :] < np.asarray(count)[:, None]


def masked_mean(x: np.ndarray, count: np.ndarray) -> np.ndarray:
    """[N, T, D] and [N] counts -> [N, D] mean over each clip's valid segments."""
    mask = valid_mask(count, x.shape[1]).astype(np.float32)[..., None]
    total = (x * mask).sum(axis=1)
    return (total / np.maximum(mask.sum(axis=1), 1.0)).astype(np.float32)
