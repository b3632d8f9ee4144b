"""Per-segment features of decoded clips: which frames and which stretch of sound each segment gets.

A segment's picture is the mean of the frame features of the frames sampled inside it (the frame
nearest its middle when none is: ``--fps`` below one frame per segment). A segment's sound is one
encoder input centred on the segment's middle, as long as the segment or the encoder's window,
whichever is longer, shifted to stay inside the clip and zero-padded when the clip is shorter:
aisfx needs 2.3 s to fill its window, so a 1 s segment is described by the 2.3 s around it.

The encoders are the clip encoders applied to segments instead of clips, batched across all the
segments of a batch of clips.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from core.data.segments import segment_count
from core.features.encoders import AudioEncoder, VisualEncoder

# Part of the cache key of segment features: bump when the rules above change.
SEGMENT_VERSION = "1"


def segment_keys(
    audio_key: str | None, visual_key: str | None, seconds: float | None
) -> tuple[str | None, str | None]:
    """Cache keys of the segment features beside the clip-level keys (None: not wanted)."""
    if seconds is None:
        return None, None
    suffix = f"-seg{seconds:g}-v{SEGMENT_VERSION}"
    return (
        audio_key + suffix if audio_key else None,
        visual_key + suffix if visual_key else None,
    )


def frame_groups(times: np.ndarray, count: int, seconds: float) -> list[np.ndarray]:
    """For each of ``count`` segments, the indices of its frames (never empty)."""
    times = np.asarray(times, dtype=np.float64)
    which = np.minimum((times / seconds + 1e-6).astype(np.int64), count - 1)
    groups = []
    for t in range(count):
        inside = np.flatnonzero(which == t)
        if not len(inside):
            inside = np.array([int(np.argmin(np.abs(times - (t + 0.5) * seconds)))])
        groups.append(inside)
    return groups


def audio_windows(
    y: np.ndarray, sample_rate: int, count: int, seconds: float, window_seconds: float
) -> list[np.ndarray]:
    """One waveform per segment: max(seconds, window_seconds) of sound centred on its middle."""
    n = math.ceil(max(seconds, window_seconds) * sample_rate)
    out = []
    for t in range(count):
        start = round((t + 0.5) * seconds * sample_rate - n / 2)
        start = min(max(start, 0), max(len(y) - n, 0))
        w = y[start : start + n]
        if len(w) < n:
            w = np.concatenate([w, np.zeros(n - len(w), np.float32)])
        out.append(w)
    return out


def frame_rows(encoder: VisualEncoder, clips: Sequence[np.ndarray]) -> list[np.ndarray]:
    """[n_i, D] features of every frame of each clip, frames of all clips batched together."""
    if not clips:
        return []
    rows = encoder.encode_frames(np.concatenate(clips))
    bounds = np.cumsum([0, *(len(c) for c in clips)])
    return [rows[a:b] for a, b in itertools.pairwise(bounds)]


def visual_segments(
    rows: np.ndarray, times: np.ndarray, duration: float | None, seconds: float
) -> np.ndarray:
    """[T, D] segment features of one clip from its frame features ``rows`` [n, D]."""
    count = segment_count(duration, seconds)
    return np.stack([rows[g].mean(axis=0) for g in frame_groups(times, count, seconds)])


def audio_segments(
    encoder: AudioEncoder,
    clips: Sequence[tuple[np.ndarray, float | None]],
    seconds: float,
) -> list[np.ndarray]:
    """[T_i, D] segment features of each (waveform, duration), all windows encoded in one go."""
    windows: list[np.ndarray] = []
    counts = []
    for y, duration in clips:
        count = segment_count(duration or len(y) / encoder.sample_rate, seconds)
        counts.append(count)
        windows += audio_windows(y, encoder.sample_rate, count, seconds, encoder.window_seconds)
    vectors = encoder.features(windows) if windows else np.zeros((0, encoder.dim), np.float32)
    bounds = np.cumsum([0, *counts])
    return [vectors[a:b] for a, b in itertools.pairwise(bounds)]
