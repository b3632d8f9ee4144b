"""The time axis of the app's state: each clip's segment features and pictures, and what the time
views compute from them with the current model. One ``TimeState`` lives in ``AppState.time``;
the root gives it the catalog (the dataset's clips) and the retrieval part (model, results) it
reads.

Segments come from the dataset when it stores them (``extract --segments``, or 3-D per-second
features); otherwise a clip's segments are encoded on request from its file, with the encoders
its dataset names (``segmentsRequested``, carried out by ``avexplorer.jobs.segments``), which is
how the demo and any folder of clips get the time views too.

The strips of the current results (the query's similarity over each of the top ``STRIP_ROWS``
results' time) are scored here for every view that shows them (the Time tab's moments, the
Explore tab's result rows): in a worker (``stripsRequested``), once per query, model and result,
kept while the model stays. Views read ``sync_matrix``, ``strips`` and ``strip_levels`` and
connect to ``segmentsChanged`` / ``stripsChanged`` / ``picturesChanged``; nothing here draws or
blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal

from avexplorer.state.catalog import Catalog
from avexplorer.state.retrieval import Retrieval, embed_features
from avexplorer.state.signals import StateSignals
from core.data.segments import DEFAULT_SECONDS, segment_bounds

CANCELLED = "Encoding the segments was cancelled; pick a query to try again."
NO_ENCODERS = (
    "this dataset does not name the encoders of its features, so its clips cannot be cut into "
    "segments; extract it with avexplorer extract --segments"
)
NO_MODEL_STRIPS = (
    "These embeddings came without their model, so the query cannot be compared with each "
    "moment of a clip: open a checkpoint (or pass model= to avexplorer.show) for the time views."
)
STRIP_ROWS = 20  # results given a strip: each may need its clip's segments encoded
_KEPT_QUERIES = 16  # queries whose strips are kept (per model)


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


def score_strips(
    model: object, query: np.ndarray, modality: str, segments: dict[int, ClipSegments]
) -> dict[int, Strip]:
    """The embedded ``query``'s cosine with each clip's segments of ``modality``, every clip in
    one pass of the model (this runs in a worker)."""
    order = list(segments)
    if not order:
        return {}
    g = embed_features(model, np.concatenate([segments[i].of(modality) for i in order]), modality)
    scores = (g @ query).astype(np.float32)
    out, start = {}, 0
    for i in order:
        n = len(segments[i].of(modality))
        out[i] = Strip(scores[start : start + n], segments[i].seconds, segments[i].duration)
        start += n
    return out


class TimeState(QObject):
    segmentsChanged = Signal()
    picturesChanged = Signal(str)  # clip path
    stripsChanged = Signal()  # ``strips`` describe the current results (some may still come)
    # requests for background work (avexplorer.jobs.segments.SegmentJobs)
    segmentsRequested = Signal(list, dict, float)  # paths, dataset attrs, segment seconds
    picturesRequested = Signal(str, float, int)  # path, segment seconds, count
    stripsRequested = Signal(object, object, object, str, object)  # key, model, query, modality,
    # {test index: ClipSegments}: ``score_strips`` of them, given back to ``set_strips(key, ...)``

    def __init__(
        self,
        signals: StateSignals,
        catalog: Catalog,
        retrieval: Retrieval,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.catalog, self.retrieval = catalog, retrieval
        self.segments: dict[str, ClipSegments | str] = {}  # path -> segments, or why there are none
        self.pictures: dict[str, ClipPictures] = {}
        self._pending: set[str] = set()
        self._pictures_pending: set[str] = set()
        self._cancelled: set[str] = set()
        # Strips of the current results: test index -> strip, or why it has none (missing: being
        # encoded or scored). Scored strips are kept per (model generation, direction, query).
        self.strips: dict[int, Strip | str] = {}
        # Why no result has a strip, when it is one reason for all (no model, no clip files):
        # said once by the views, instead of a row each or "computing…" for ever.
        self.strips_note: str | None = None
        self._strips_key: tuple | None = None
        self._scored: dict[tuple, dict[int, Strip]] = {}
        self._scoring: set[tuple[tuple, int]] = set()
        self._generation = 0
        signals.datasetChanged.connect(self.clear)
        signals.queryChanged.connect(self._forget_cancelled)
        signals.modelChanged.connect(self._model_changed)
        signals.resultsChanged.connect(self._results_changed)
        self.segmentsChanged.connect(self._score_strips)

    def clear(self) -> None:
        self.segments.clear()
        self.pictures.clear()
        self._pending.clear()
        self._pictures_pending.clear()
        self._cancelled.clear()
        self._model_changed()
        self.segmentsChanged.emit()

    # ----- segment features ------------------------------------------------------------------
    def stores_segments(self, split: str) -> bool:
        """Whether the dataset's split holds segment features of both modalities."""
        data = self.catalog.dataset
        seg = data.split(split).segments if data is not None else None
        return seg is not None and seg.audio is not None and seg.visual is not None

    def item_segments(self, split: str, index: int) -> ClipSegments | str | None:
        """A dataset item's segments; a reason when it has none; None while they are encoded
        (asked for here, announced by ``segmentsChanged``)."""
        data = self.catalog.dataset
        if data is None:
            return None
        stored = data.split(split).segments
        if stored is not None and self.stores_segments(split):
            return ClipSegments(
                stored.of(index, "audio"), stored.of(index, "visual"), stored.seconds
            )
        path = self.catalog.item_path(split, index)
        if path is None:
            return "this item has no clip file and its dataset stores no segment features"
        if not self.can_encode():
            return NO_ENCODERS
        return self.path_segments(path)

    def can_encode(self) -> bool:
        """Whether the dataset names the encoders its clips' segments would be encoded with."""
        attrs = self.catalog.dataset.attrs if self.catalog.dataset is not None else {}
        return bool(attrs.get("audio_encoder") and attrs.get("visual_encoder"))

    def path_segments(self, path: str) -> ClipSegments | str | None:
        if path in self.segments:
            return self.segments[path]
        self.request_segments([path])
        return None

    def request_segments(self, paths: list[str]) -> None:
        data = self.catalog.dataset
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
        model = self.retrieval.model
        if model is None:
            return None
        a = embed_features(model, segments.audio, "audio")
        v = embed_features(model, segments.visual, "visual")
        return (a @ v.T).astype(np.float32)

    # ----- the strips of the current results ------------------------------------------------
    def strip_rows(self) -> list[int]:
        """The test indices of the results that get a strip, in rank order."""
        r = self.retrieval.results
        return [int(i) for i in r.indices[:STRIP_ROWS]] if r is not None else []

    def strip_levels(self) -> tuple[float, float]:
        """One colour scale for all the current strips: their lowest and highest cosine."""
        scores = [st.scores for st in self.strips.values() if isinstance(st, Strip)]
        if not scores:
            return -1.0, 1.0
        allv = np.concatenate(scores)
        return float(allv.min()), float(allv.max())

    def _model_changed(self) -> None:
        """Strips of another model (or dataset) are void; the results that follow ask anew."""
        self._generation += 1
        self._scored.clear()
        self._scoring.clear()
        self._strips_key = None
        self.strips = {}
        self.strips_note = None

    def _results_changed(self) -> None:
        r = self.retrieval
        self.strips = {}
        self._strips_key = None
        self.strips_note = None
        if r.results is not None and r.model is None:
            self.strips_note = NO_MODEL_STRIPS
            self.strips = dict.fromkeys(self.strip_rows(), NO_MODEL_STRIPS)
        if r.results is not None and r.model is not None and r.query_vector is not None:
            self._strips_key = (self._generation, r.direction, r.query_vector.tobytes())
            if self._strips_key not in self._scored:
                while len(self._scored) >= _KEPT_QUERIES:
                    del self._scored[next(iter(self._scored))]
                self._scored[self._strips_key] = {}
            if not self.stores_segments("test") and self.can_encode():  # in one job
                self.request_segments(
                    [
                        p
                        for i in self.strip_rows()
                        if (p := self.catalog.item_path("test", i)) is not None
                    ]
                )
        self._score_strips()

    def _score_strips(self) -> None:
        """Fill ``strips`` from what is known; ask a worker for the strips whose segments are in."""
        key, r = self._strips_key, self.retrieval
        scored = self._scored.get(key) if key is not None else None
        if key is None or scored is None:
            self.stripsChanged.emit()
            return
        todo: dict[int, ClipSegments] = {}
        for i in self.strip_rows():
            if i in scored:
                self.strips[i] = scored[i]
                continue
            segs = self.item_segments("test", i)
            if isinstance(segs, str):
                self.strips[i] = segs
            elif isinstance(segs, ClipSegments) and (key, i) not in self._scoring:
                todo[i] = segs
        if todo:
            self._scoring.update((key, i) for i in todo)
            other = "visual" if r.query_modality == "audio" else "audio"
            self.stripsRequested.emit(key, r.model, r.query_vector, other, todo)
        shown = [self.strips.get(i) for i in self.strip_rows()]
        self.strips_note = None
        if shown and all(isinstance(v, str) and v == shown[0] for v in shown):
            self.strips_note = shown[0]
        self.stripsChanged.emit()

    def set_strips(self, key: tuple, batch: dict[int, Strip]) -> None:
        """Strips scored by a worker for ``key`` (kept if that model is still the one)."""
        self._scoring.difference_update((key, i) for i in batch)
        if key in self._scored:
            self._scored[key].update(batch)
        if key == self._strips_key:
            self.strips.update(batch)
            self.stripsChanged.emit()

    def strips_failed(self, key: tuple, indices: list[int], message: str) -> None:
        self._scoring.difference_update((key, i) for i in indices)
        if key == self._strips_key:
            self.strips.update(dict.fromkeys(indices, message.splitlines()[0]))
            self.stripsChanged.emit()
