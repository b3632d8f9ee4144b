"""What queries search and what they find: the model, the test embeddings it made (the gallery),
the query, the direction, k and the results.

``Retrieval`` lives in ``AppState.retrieval``. A query is a dataset item, a file's decoded
features or a selection's mean (``Query``); which modality is embedded, and with which model,
follows the current direction and model, so ``_requery`` re-embeds it whenever either changes
and a query never goes stale. Hits and AP come from ``core.evaluation.retrieval`` and
``core.evaluation.metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avexplorer.projections import EpochEmbeddings
from avexplorer.state.catalog import Catalog
from avexplorer.state.signals import StateSignals
from core.data.dataset import Split
from core.errors import UserError
from core.exploration.selection import Selection, mean_query
from core.training.config import RunConfig

DIRECTIONS = ("A2V", "V2A")


def modality_of(direction: str) -> str:
    """The query's modality in a direction: audio for A2V, visual for V2A."""
    return "audio" if direction == "A2V" else "visual"


def direction_of(modality: str) -> str:
    return "A2V" if modality == "audio" else "V2A"


def embed_features(model: Any, feats: np.ndarray, modality: str) -> np.ndarray:
    """L2-normalised embeddings of raw features [n, D] with a model's audio or visual encoder."""
    from core.training.embedding import embed_features as core_embed

    return core_embed(model, np.asarray(feats, dtype=np.float32), modality)


def topk(queries: np.ndarray, gallery: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    from core.evaluation.retrieval import topk as core_topk

    scores, indices = core_topk(queries, gallery, k)
    return np.asarray(scores), np.asarray(indices)


class MissingModality(UserError):
    """The file has no content of the direction's modality (a sound queried V2A)."""

    def __init__(self, message: str, modality: str, has: str):
        super().__init__(message)
        self.modality, self.has = modality, has


NO_MODEL = "Train a model or load a checkpoint to run queries."
# What a file holds, by the modalities decoded from it.
FILE_KINDS = {("audio",): "sound", ("visual",): "picture", ("audio", "visual"): "video"}
MODALITY_NOUNS = {"audio": "sound", "visual": "picture"}


def file_kind(features: dict[str, Any]) -> str:
    """ "video", "sound" or "picture": what a query file holds."""
    return FILE_KINDS.get(tuple(sorted(features)), "file")


@dataclass(frozen=True)
class NoResults:
    """Why the current query has no results, and what would give it some."""

    reason: str  # a sentence for the results panel
    direction: str | None = None  # the direction that would work, when switching is the fix


def embed_file_features(
    model: Any, features: dict[str, np.ndarray], modality: str, name: str
) -> np.ndarray | None:
    """The L2-normalised embedding of a file's ``modality`` features with ``model``.

    None without a model; ``UserError`` when the file lacks the modality or its features do not
    fit the model.
    """
    if model is None:
        return None
    if modality not in features:
        if not features:
            raise UserError(f"{name}: nothing could be decoded from it")
        has = next(iter(features))
        raise MissingModality(
            f"{name} is a {file_kind(features)}: it has no {MODALITY_NOUNS[modality]} to query "
            f"with in {direction_of(modality)}",
            modality,
            has,
        )
    x = np.asarray(features[modality], dtype=np.float32).reshape(1, -1)
    encoder = model.audio_encoder if modality == "audio" else model.visual_encoder
    want = encoder[0].in_features
    if x.shape[1] != want:
        from core.diagnostics import dimension_hint

        raise UserError(
            f"{name}: its {modality} features have {x.shape[1]} dimensions but the model expects "
            f"{want}; {dimension_hint(modality, x.shape[1], want)}"
        )
    return embed_features(model, x, modality)[0]


@dataclass
class Query:
    """What the user queries with: a dataset item, or a file (its raw features per modality).

    Which modality is embedded, and with which model, is not stored: it follows the direction
    and the model of ``Retrieval``, so a query never goes stale when either changes.
    """

    name: str
    label: int | None  # class id when known (AP and hit/miss need it)
    split: str | None = None  # dataset split of the item, None for a file
    index: int | None = None
    path: str | None = None  # clip file, for playback, thumbnails and spectrograms
    features: dict[str, np.ndarray] | None = None  # a file query's features per modality
    image: Any = None  # a file query's picture (QImage): first frame, or a spectrogram
    group: Selection | None = None  # a selection whose mean embedding is the query

    @property
    def is_file(self) -> bool:
        return self.split is None and self.group is None


@dataclass
class Results:
    query: Query
    direction: str  # "A2V" or "V2A"
    indices: np.ndarray  # [k] positions in the test split
    scores: np.ndarray  # [k] cosine
    hits: np.ndarray | None  # [k] bool, same class as the query; None when the label is unknown
    ap: float | None  # AP over the full test ranking, None when the query has no label

    @property
    def modality(self) -> str:
        return modality_of(self.direction)


class Retrieval:
    def __init__(self, signals: StateSignals, catalog: Catalog):
        self.signals, self.catalog = signals, catalog
        self.model: Any = None
        self.model_config: RunConfig | None = None
        self.model_class_names: tuple[str, ...] = ()
        self.gallery: EpochEmbeddings | None = None  # test embeddings the retrieval view searches
        self.query: Query | None = None
        self.query_vector: np.ndarray | None = None  # the query embedded in ``direction``
        self.direction = "A2V"
        self.k = 10
        self.results: Results | None = None
        self.no_results: NoResults | None = None  # why a query has no results (None: it has)

    def clear(self) -> None:
        """Another dataset is open: its queries and results are gone, and embeddings of another
        dataset cannot be searched (``AppState.set_dataset`` announces it)."""
        self.query = None
        self.query_vector = None
        self.results = None
        self.no_results = None
        self.gallery = None
        self.model = None

    # ----- model and direction -----------------------------------------------------------------
    def use_embeddings(self, emb: EpochEmbeddings, config: RunConfig | None = None) -> None:
        """Search ``emb`` (test split) from now on, with its model for new queries."""
        self.gallery = emb
        self.model = emb.model
        if config is not None:
            self.model_config = config
        self.signals.modelChanged.emit()
        self._requery()

    def use_model(self, model: Any) -> None:
        """Embed new queries with ``model`` (a checkpoint without test embeddings)."""
        self.model = model
        self.signals.modelChanged.emit()
        self._requery()

    @property
    def query_modality(self) -> str:
        return modality_of(self.direction)

    def set_direction(self, direction: str) -> None:
        if direction not in DIRECTIONS or direction == self.direction:
            return
        self.direction = direction
        self.signals.directionChanged.emit(direction)
        self._requery()

    def set_k(self, k: int) -> None:
        self.k = max(1, int(k))
        self.update_results()

    def embed_item(self, split: str, index: int, modality: str) -> np.ndarray | None:
        """Embedding of one dataset item with the current model (test items are cached)."""
        if self.gallery is not None and split == "test":
            return (self.gallery.audio if modality == "audio" else self.gallery.visual)[index]
        data = self.catalog.dataset
        if self.model is None or data is None:
            return None
        s: Split = data.split(split)
        feats = (s.audio if modality == "audio" else s.visual)[index : index + 1]
        return embed_features(self.model, feats, modality)[0]

    # ----- the query ---------------------------------------------------------------------------
    def set_item_query(self, split: str, index: int, modality: str | None = None) -> None:
        """Query with dataset item (split, index); a ``modality`` sets the direction too."""
        c = self.catalog
        if c.dataset is None:
            return
        self.query = Query(
            c.item_name(split, index),
            int(c.dataset.split(split).labels[index]),
            split,
            index,
            c.item_path(split, index),
        )
        self._set_direction_quietly(modality)
        self.signals.queryChanged.emit()
        self._requery()

    def query_with_file(self, path: str) -> None:
        """Ask for a file (video, sound, image, .npz/.npy of features) to be the query."""
        if self.model is None:
            self.signals.report_error(
                "No model yet", "Train a model or load a checkpoint before querying with a file."
            )
            return
        self.signals.fileQueryRequested.emit(path)

    def set_file_query(self, path: str, features: dict[str, np.ndarray], image: Any) -> None:
        """A decoded file becomes the query (its features are embedded here, as needed)."""
        self.query = Query(Path(path).name, None, path=path, features=features, image=image)
        if self.query_modality not in features and features:
            # A sound has no picture (and a picture no sound): query with what the file has.
            self._set_direction_quietly(next(iter(features)))
        self.signals.queryChanged.emit()
        self._requery()

    def set_group_query(self, group: Selection, modality: str) -> None:
        """Query with the mean of ``group``'s ``modality`` items (A2V for audio, V2A for
        visual); the mean follows the model, like any query."""
        self.query = Query(f"mean of {group.count} selected items", None, group=group)
        self._set_direction_quietly(modality)
        self.signals.queryChanged.emit()
        self._requery()

    def _set_direction_quietly(self, modality: str | None) -> None:
        if modality is not None and direction_of(modality) != self.direction:
            self.direction = direction_of(modality)
            self.signals.directionChanged.emit(self.direction)

    def _group_vector(self, group: Selection) -> np.ndarray | None:
        g = self.gallery
        if g is None or len(group) != len(g.audio):
            return None
        side = self.query_modality
        return mean_query(g.audio if side == "audio" else g.visual, getattr(group, side))

    def _requery(self) -> None:
        """Embed the query in the current direction with the current model, then search."""
        q = self.query
        self.query_vector = None
        self.no_results = None
        if q is not None and q.group is not None:
            self.query_vector = self._group_vector(q.group)
        elif q is not None and q.is_file:
            try:
                self.query_vector = embed_file_features(
                    self.model, q.features or {}, self.query_modality, q.name
                )
            except MissingModality as e:
                # Said where the results would be, with the direction that works: a sound
                # searches the pictures (A2V), a picture the sounds (V2A).
                lacks, has = MODALITY_NOUNS[e.modality], MODALITY_NOUNS[e.has]
                works = direction_of(e.has)
                self.no_results = NoResults(
                    f"{e}, which searches the {has}s of the test clips with a {lacks}. Switch "
                    f"to {works} to find the {lacks}s that go with it.",
                    works,
                )
                self.signals.message.emit(str(e))
            except UserError as e:
                self.signals.report_error("Cannot query with this file", str(e))
        elif q is not None:
            self.query_vector = self.embed_item(q.split, q.index, self.query_modality)  # type: ignore[arg-type]
            if self.query_vector is None:
                self.no_results = NoResults(NO_MODEL)
                self.signals.message.emit(NO_MODEL)
        self.update_results()

    # ----- the results -------------------------------------------------------------------------
    def update_results(self) -> None:
        q, g, v, data = self.query, self.gallery, self.query_vector, self.catalog.dataset
        if q is None or g is None or v is None or data is None:
            self.results = None
            self.signals.resultsChanged.emit()
            return
        from core.evaluation.metrics import average_precisions
        from core.evaluation.retrieval import class_hits

        gallery = g.visual if self.direction == "A2V" else g.audio
        k = min(self.k, len(gallery))
        scores, indices = topk(v[None, :], gallery, k)
        labels = data.test.labels
        hits, ap = None, None
        if q.label is not None:
            hits = class_hits(indices, labels, np.array([q.label]))[0]
            ap = float(average_precisions(v[None], gallery, [q.label], labels)[0])
        self.results = Results(q, self.direction, indices[0], scores[0], hits, ap)
        self.signals.resultsChanged.emit()
