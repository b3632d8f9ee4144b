"""The time axis of the app's state: each clip's segment features and pictures, and what the time
views compute from them with the current model.

Segments come from the dataset when it stores them (``extract --segments``, or 3-D per-second
features); otherwise a clip's segments are encoded on request from its file, with the encoders
its dataset names (``segmentsRequested``, carried out by ``avexplorer.jobs.segments``), which is
how the demo and any folder of clips get the time views too. Views read ``sync_matrix`` and
``strip`` and connect to ``segmentsChanged`` / ``picturesChanged``; nothing here draws or blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal

from avexplorer.state import AppState, embed_features
from core.segments import DEFAULT_SECONDS, segment_bounds

CANCELLED = "Encoding the segments was cancelled; pick a query to try again."


@dataclass(frozen=True)
class ClipSegments:
    audio: np.ndarray  # [T, Da] raw segment features
    visual: np.ndarray  # [T, Dv]
    seconds: float  # segment length
    duration: float | None = None

    def __len__(self) -> int:
        return len(self.audio)

    def of(self, modality: str) -> np.ndarray:
        return self.audio if modality == "audio" else self.visual

    def bounds(self) -> np.ndarray:
        return segment_bounds(len(self), self.seconds, self.duration)


@dataclass(frozen=True)
class ClipPictures:
    frames: list[np.ndarray]  # one small RGB frame per segment ([] for a sound)
    spectrogram: np.ndarray | None  # [mels, frames] dB, low frequencies last, 10 ms hops


@dataclass(frozen=True)
class Strip:
    """A result's similarity to the query over its time, and its best moment."""

    scores: np.ndarray  # [T] cosine
    seconds: float
    duration: float | None

    @property
    def best(self) -> int:
        return int(np.argmax(self.scores))

    def bounds(self) -> np.ndarray:
        return segment_bounds(len(self.scores), self.seconds, self.duration)


class TimeState(QObject):
    segmentsChanged = Signal()
    picturesChanged = Signal(str)  # clip path
    # requests for background work (avexplorer.jobs.segments.SegmentJobs)
    segmentsRequested = Signal(list, dict, float)  # paths, dataset attrs, segment seconds
    picturesRequested = Signal(str, float, int)  # path, segment seconds, count

    def __init__(self, state: AppState):
        super().__init__(state)
        self.state = state
        self.segments: dict[str, ClipSegments | str] = {}  # path -> segments, or why there are none
        self.pictures: dict[str, ClipPictures] = {}
        self._pending: set[str] = set()
        self._pictures_pending: set[str] = set()
        self._cancelled: set[str] = set()
        state.datasetChanged.connect(self.clear)
        state.queryChanged.connect(self._forget_cancelled)

    def clear(self) -> None:
        self.segments.clear()
        self.pictures.clear()
        self._pending.clear()
        self._pictures_pending.clear()
        self._cancelled.clear()
        self.segmentsChanged.emit()

    # ----- segment features ------------------------------------------------------------------
    def stores_segments(self, split: str) -> bool:
        """Whether the dataset's split holds segment features of both modalities."""
        data = self.state.dataset
        seg = data.split(split).segments if data is not None else None
        return seg is not None and seg.audio is not None and seg.visual is not None

    def item_segments(self, split: str, index: int) -> ClipSegments | str | None:
        """A dataset item's segments; a reason when it has none; None while they are encoded
        (asked for here, announced by ``segmentsChanged``)."""
        data = self.state.dataset
        if data is None:
            return None
        stored = data.split(split).segments
        if stored is not None and self.stores_segments(split):
            return ClipSegments(
                stored.of(index, "audio"), stored.of(index, "visual"), stored.seconds
            )
        path = self.state.item_path(split, index)
        if path is None:
            return "this item has no clip file and its dataset stores no segment features"
        return self.path_segments(path)

    def path_segments(self, path: str) -> ClipSegments | str | None:
        if path in self.segments:
            return self.segments[path]
        self.request_segments([path])
        return None

    def request_segments(self, paths: list[str]) -> None:
        data = self.state.dataset
        wanted = [p for p in paths if p not in self.segments and p not in self._pending]
        if wanted and data is not None:
            self._pending.update(wanted)
            self.segmentsRequested.emit(wanted, dict(data.attrs), DEFAULT_SECONDS)

    def set_segments(self, batch: dict[str, ClipSegments | str | None]) -> None:
        """Segments (or why there are none) of some clips; None: not encoded (cancelled), said
        so until the next query, which asks again."""
        for path, value in batch.items():
            if value is None:
                self._cancelled.add(path)
            self.segments[path] = CANCELLED if value is None else value
        self._pending.difference_update(batch)
        self.segmentsChanged.emit()

    def _forget_cancelled(self) -> None:
        for path in self._cancelled:
            self.segments.pop(path, None)
        self._cancelled.clear()

    # ----- pictures --------------------------------------------------------------------------
    def clip_pictures(self, path: str, seconds: float, count: int) -> ClipPictures | None:
        if path in self.pictures:
            return self.pictures[path]
        if path not in self._pictures_pending:
            self._pictures_pending.add(path)
            self.picturesRequested.emit(path, seconds, count)
        return None

    def set_pictures(self, path: str, pictures: ClipPictures) -> None:
        self.pictures[path] = pictures
        self._pictures_pending.discard(path)
        self.picturesChanged.emit(path)

    # ----- what the views show ---------------------------------------------------------------
    def sync_matrix(self, segments: ClipSegments) -> np.ndarray | None:
        """[Ta, Tv] cosine of every audio segment with every visual segment (None: no model)."""
        model = self.state.model
        if model is None:
            return None
        a = embed_features(model, segments.audio, "audio")
        v = embed_features(model, segments.visual, "visual")
        return (a @ v.T).astype(np.float32)

    def strip(self, index: int) -> Strip | str | None:
        """Similarity over time of the current query with test item ``index``'s segments of the
        other modality (a reason when there are none; None while they are encoded)."""
        s = self.state
        if s.model is None or s.query_vector is None:
            return None
        segs = self.item_segments("test", index)
        if not isinstance(segs, ClipSegments):
            return segs
        other = "visual" if s.query_modality == "audio" else "audio"
        g = embed_features(s.model, segs.of(other), other)
        return Strip((g @ s.query_vector).astype(np.float32), segs.seconds, segs.duration)
