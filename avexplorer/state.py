"""The app's model: one ``Session`` owns the state and announces changes through Qt signals.

State: the dataset, the class colours every view shares, the training runs (their step losses,
epoch metrics, latest alignment snapshot, test embeddings and 2-D layouts per epoch), the model
used for queries, and the current query with its results. Widgets read it and call its methods;
workers (``avexplorer.workers``) do the heavy lifting and hand results back here on the GUI
thread. Nothing here draws.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QColor

import avexplorer.qt_compat  # noqa: F401 (before any Qt call: keeps PySide6 6.12 from crashing)
from avexplorer.layouts import Layout
from avexplorer.train_process import EpochEmbeddings
from core.config import RunConfig
from core.data import AVDataset, Split
from core.events import (
    AlignmentSnapshot,
    CheckpointSaved,
    EpochEnd,
    Paused,
    Resumed,
    RunFinished,
    RunStarted,
    StepEnd,
)
from core.scores import MapScores

# Qualitative palette (Tableau 20 reordered so the first ten are the strong colours).
_PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#c7c7c7",
    "#dbdb8d",
    "#9edae5",
]
_RUN_PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6"]


def class_colors(n: int) -> list[QColor]:
    """Distinct colours for n classes: the palette first, then evenly spaced hues."""
    if n <= len(_PALETTE):
        return [QColor(c) for c in _PALETTE[:n]]
    return [QColor.fromHsvF((i * 0.618034) % 1.0, 0.65, 0.9) for i in range(n)]


def settings() -> QSettings:
    """The app's persistent settings (window layout, last paths, recent runs)."""
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, "avexplorer", "avexplorer"
    )


@dataclass
class Run:
    """One training run and everything it has reported so far."""

    id: int
    name: str
    config: RunConfig
    color: QColor
    out_dir: Path
    state: str = "starting"  # starting, running, paused, finished, stopped, failed
    total_steps: int = 0
    steps_per_epoch: int = 0
    total_epochs: int = 0
    started: float = field(default_factory=time.monotonic)
    steps: list[int] = field(default_factory=list)
    losses: dict[str, list[float]] = field(default_factory=dict)
    r_steps: list[float] = field(default_factory=list)
    last_step: StepEnd | None = None
    epochs: list[EpochEnd] = field(default_factory=list)
    snapshot: AlignmentSnapshot | None = None
    embeddings: dict[int, EpochEmbeddings] = field(default_factory=dict)
    layouts: dict[tuple[int, str], Layout] = field(default_factory=dict)
    checkpoints: dict[str, Path] = field(default_factory=dict)
    finished: RunFinished | None = None
    visible: bool = True  # overlaid in the plots

    @property
    def method(self) -> str:
        return self.config.loss.method

    def eta_seconds(self) -> float | None:
        if self.last_step is None or self.total_steps == 0:
            return None
        done = self.last_step.global_step + 1
        return (time.monotonic() - self.started) / done * (self.total_steps - done)

    def add_step(self, ev: StepEnd) -> None:
        self.steps.append(ev.global_step)
        self.r_steps.append(ev.r)
        n = len(self.steps) - 1
        for name, value in ev.losses.items():
            # A component that appears late is padded with NaN so every list stays aligned.
            self.losses.setdefault(name, [float("nan")] * n).append(float(value))
        for values in self.losses.values():
            if len(values) < len(self.steps):
                values.append(float("nan"))
        self.last_step = ev


@dataclass
class Query:
    """A retrieval query: one embedded audio or visual item."""

    modality: str  # "audio" or "visual"
    vector: np.ndarray  # [d] float32, L2-normalised
    label: int | None  # class id when known (AP needs it)
    name: str
    split: str | None = None  # dataset split of the item, None for a dropped file
    index: int | None = None
    path: str | None = None  # clip file, for playback and thumbnails


@dataclass
class Results:
    query: Query
    direction: str  # "A2V" or "V2A"
    indices: np.ndarray  # [k] positions in the test split
    scores: np.ndarray  # [k] cosine
    hits: np.ndarray  # [k] bool, same class as the query (all False when the label is unknown)
    ap: float | None  # AP over the full test ranking, None when the query has no label


class Session(QObject):
    datasetChanged = Signal()
    runAdded = Signal(int)
    runStateChanged = Signal(int)
    runVisibilityChanged = Signal()
    stepsAppended = Signal(int)
    epochAdded = Signal(int, int)
    snapshotChanged = Signal(int)
    embeddingsAdded = Signal(int, int)  # run id (-1 for a loaded checkpoint), epoch
    layoutReady = Signal(int, int, str)  # run id, epoch, method
    currentRunChanged = Signal(int)
    modelChanged = Signal()
    queryChanged = Signal()
    resultsChanged = Signal()
    thumbnailsChanged = Signal()
    taskChanged = Signal(str)  # "" when idle
    message = Signal(str)  # one-line status for the status bar
    error = Signal(str, str)  # title, message

    CHECKPOINT_RUN = -1  # run id under which a loaded checkpoint's embeddings are kept

    def __init__(self, runs_root: str | Path | None = None, parent: QObject | None = None):
        super().__init__(parent)
        # Where runs write their checkpoints; a temp folder unless the app gives a lasting one.
        self._tmp = Path(tempfile.mkdtemp(prefix="avexplorer-"))
        self.runs_root = Path(runs_root) if runs_root is not None else self._tmp
        self.dataset: AVDataset | None = None
        self.colors: list[QColor] = []
        self.runs: dict[int, Run] = {}
        self.current_run_id: int | None = None
        self.model: Any = None
        self.model_config: RunConfig | None = None
        self.model_class_names: tuple[str, ...] = ()
        self.gallery: EpochEmbeddings | None = None  # test embeddings the retrieval view searches
        self.query: Query | None = None
        self.direction = "A2V"
        self.k = 10
        self.results: Results | None = None
        # A loaded checkpoint's test embeddings and layouts (it has no Run).
        self.checkpoint_embeddings: dict[int, EpochEmbeddings] = {}
        self.checkpoint_layouts: dict[tuple[int, str], Layout] = {}
        self.thumbnails: dict[str, Any] = {}  # clip path -> QImage
        self.durations: dict[str, float] = {}
        self._ids = itertools.count(1)
        self._tasks: list[str] = []

    # ----- dataset -----------------------------------------------------------------------------
    def set_dataset(self, data: AVDataset) -> None:
        self.dataset = data
        self.colors = class_colors(data.num_classes)
        self.thumbnails.clear()
        self.query = None
        self.results = None
        # Embeddings of another dataset cannot be searched; a model of matching dims still can.
        self.gallery = None
        self.datasetChanged.emit()
        self.queryChanged.emit()
        self.resultsChanged.emit()

    def items(self) -> list[tuple[str, int]]:
        """(split, index) of every item, in table order: train, val, test."""
        if self.dataset is None:
            return []
        return [(s, i) for s in ("train", "val", "test") for i in range(len(self.dataset.split(s)))]

    def item_path(self, split: str, index: int) -> str | None:
        if self.dataset is None:
            return None
        paths = self.dataset.split(split).paths
        return paths[index] if paths is not None else None

    def item_name(self, split: str, index: int) -> str:
        path = self.item_path(split, index)
        return Path(path).name if path else f"{split} #{index}"

    def class_name(self, label: int | None) -> str:
        if label is None or self.dataset is None:
            return "?"
        return self.dataset.class_names[label]

    def set_thumbnails(self, batch: dict[str, Any], durations: dict[str, float]) -> None:
        self.thumbnails.update(batch)
        self.durations.update(durations)
        self.thumbnailsChanged.emit()

    # ----- runs --------------------------------------------------------------------------------
    def new_run(self, config: RunConfig) -> Run:
        rid = next(self._ids)
        run = Run(
            id=rid,
            name=f"{config.loss.method} {rid}",
            config=config,
            color=QColor(_RUN_PALETTE[(rid - 1) % len(_RUN_PALETTE)]),
            out_dir=self.runs_root / f"{time.strftime('%Y%m%d-%H%M%S')}-{config.loss.method}-{rid}",
        )
        self.runs[rid] = run
        self.current_run_id = rid
        self.runAdded.emit(rid)
        self.currentRunChanged.emit(rid)
        return run

    @property
    def current_run(self) -> Run | None:
        return self.runs.get(self.current_run_id) if self.current_run_id is not None else None

    def set_current_run(self, rid: int) -> None:
        if rid in self.runs and rid != self.current_run_id:
            self.current_run_id = rid
            run = self.runs[rid]
            if run.embeddings:
                self.use_embeddings(run.embeddings[max(run.embeddings)])
            self.currentRunChanged.emit(rid)

    def set_run_visible(self, rid: int, visible: bool) -> None:
        if rid in self.runs:
            self.runs[rid].visible = visible
            self.runVisibilityChanged.emit()

    def remove_run(self, rid: int) -> None:
        run = self.runs.get(rid)
        if run is None or run.state in ("starting", "running", "paused"):
            return
        del self.runs[rid]
        if self.current_run_id == rid:
            self.current_run_id = max(self.runs) if self.runs else None
        self.runVisibilityChanged.emit()
        self.currentRunChanged.emit(self.current_run_id or 0)

    def handle_events(self, rid: int, events: list[Any]) -> None:
        """Fold a batch of training events into the run (called on the GUI thread)."""
        run = self.runs[rid]
        stepped = False
        for ev in events:
            if isinstance(ev, StepEnd):
                run.add_step(ev)
                stepped = True
            elif isinstance(ev, RunStarted):
                run.total_steps = ev.steps_per_epoch * ev.total_epochs
                run.steps_per_epoch = ev.steps_per_epoch
                run.total_epochs = ev.total_epochs
                run.started = time.monotonic()
                run.state = "running"
                self.runStateChanged.emit(rid)
            elif isinstance(ev, AlignmentSnapshot):
                run.snapshot = ev
                self.snapshotChanged.emit(rid)
            elif isinstance(ev, EpochEnd):
                run.epochs.append(ev)
                self.epochAdded.emit(rid, ev.epoch)
            elif isinstance(ev, CheckpointSaved):
                run.checkpoints[ev.kind] = Path(ev.path)
            elif isinstance(ev, Paused):
                run.state = "paused"
                self.runStateChanged.emit(rid)
            elif isinstance(ev, Resumed):
                run.state = "running"
                self.runStateChanged.emit(rid)
            elif isinstance(ev, RunFinished):
                run.finished = ev
                run.state = "stopped" if ev.stopped else "finished"
                self.runStateChanged.emit(rid)
            elif isinstance(ev, EpochEmbeddings):
                self.add_embeddings(rid, ev)
        if stepped:
            self.stepsAppended.emit(rid)

    def run_failed(self, rid: int, message: str) -> None:
        if rid in self.runs:
            self.runs[rid].state = "failed"
            self.runStateChanged.emit(rid)
        self.report_error("Training failed", message)

    def add_embeddings(self, rid: int, emb: EpochEmbeddings) -> None:
        run = self.runs.get(rid)
        if run is not None:
            run.embeddings[emb.epoch] = emb
        elif rid == self.CHECKPOINT_RUN:
            self.checkpoint_embeddings = {emb.epoch: emb}
            self.checkpoint_layouts = {}
        if rid == self.current_run_id or run is None:
            self.use_embeddings(emb, config=run.config if run else None)
        if emb.layout is not None:  # made by the training process with the embeddings
            self.add_layout(rid, emb.layout)
        self.embeddingsAdded.emit(rid, emb.epoch)

    def add_layout(self, rid: int, layout: Layout) -> None:
        run = self.runs.get(rid)
        if run is not None:
            run.layouts[(layout.epoch, layout.method)] = layout
        elif rid == self.CHECKPOINT_RUN:
            self.checkpoint_layouts[(layout.epoch, layout.method)] = layout
        else:
            return  # the run was removed meanwhile
        self.layoutReady.emit(rid, layout.epoch, layout.method)

    def layouts_for(self, rid: int) -> dict[tuple[int, str], Layout]:
        if rid == self.CHECKPOINT_RUN:
            return self.checkpoint_layouts
        run = self.runs.get(rid)
        return run.layouts if run is not None else {}

    def embeddings_for(self, rid: int) -> dict[int, EpochEmbeddings]:
        if rid == self.CHECKPOINT_RUN:
            return self.checkpoint_embeddings
        run = self.runs.get(rid)
        return run.embeddings if run is not None else {}

    def previous_layout(self, rid: int, epoch: int, method: str) -> Layout | None:
        """The layout of the nearest earlier epoch with ``method`` (for alignment and UMAP init)."""
        layouts = self.layouts_for(rid)
        earlier = [e for e, m in layouts if m == method and e < epoch]
        return layouts[(max(earlier), method)] if earlier else None

    # ----- model and retrieval -----------------------------------------------------------------
    def use_embeddings(self, emb: EpochEmbeddings, config: RunConfig | None = None) -> None:
        """Search ``emb`` (test split) from now on, with its model for new queries."""
        self.gallery = emb
        self.model = emb.model
        if config is not None:
            self.model_config = config
        self.modelChanged.emit()
        if self.query is not None and self.query.split is not None:
            self.set_item_query(self.query.split, self.query.index, self.query.modality)
        else:
            self.update_results()

    def set_direction(self, direction: str) -> None:
        if direction not in ("A2V", "V2A") or direction == self.direction:
            return
        self.direction = direction
        if self.query is not None and self.query.split is not None:
            modality = "audio" if direction == "A2V" else "visual"
            self.set_item_query(self.query.split, self.query.index, modality)
        elif self.query is not None:
            self.update_results()

    def set_k(self, k: int) -> None:
        self.k = max(1, int(k))
        self.update_results()

    def embed_item(self, split: str, index: int, modality: str) -> np.ndarray | None:
        """Embedding of one dataset item with the current model (test items are cached)."""
        if self.gallery is not None and split == "test":
            return (self.gallery.audio if modality == "audio" else self.gallery.visual)[index]
        if self.model is None or self.dataset is None:
            return None
        s: Split = self.dataset.split(split)
        feats = (s.audio if modality == "audio" else s.visual)[index : index + 1]
        return embed_features(self.model, feats, modality)[0]

    def set_item_query(self, split: str, index: int, modality: str | None = None) -> None:
        """Query with dataset item (split, index); modality defaults to the direction's."""
        if self.dataset is None:
            return
        modality = modality or ("audio" if self.direction == "A2V" else "visual")
        self.direction = "A2V" if modality == "audio" else "V2A"
        vector = self.embed_item(split, index, modality)
        label = int(self.dataset.split(split).labels[index])
        name = self.item_name(split, index)
        path = self.item_path(split, index)
        self.query = Query(modality, vector, label, name, split, index, path)  # type: ignore[arg-type]
        self.queryChanged.emit()
        if vector is None:
            self.results = None
            self.resultsChanged.emit()
            self.message.emit("Train a model or load a checkpoint to run queries.")
            return
        self.update_results()

    def set_file_query(self, path: str, modality: str, vector: np.ndarray) -> None:
        self.direction = "A2V" if modality == "audio" else "V2A"
        self.query = Query(modality, vector.astype(np.float32), None, Path(path).name, path=path)
        self.queryChanged.emit()
        self.update_results()

    def update_results(self) -> None:
        q, g = self.query, self.gallery
        if q is None or g is None or q.vector is None or self.dataset is None:
            self.results = None
            self.resultsChanged.emit()
            return
        gallery = g.visual if q.modality == "audio" else g.audio
        k = min(self.k, len(gallery))
        scores, indices = topk(q.vector[None, :], gallery, k)
        scores, indices = scores[0], indices[0]
        labels = self.dataset.test.labels
        if q.label is not None:
            hits = labels[indices] == q.label
            from core.metrics import average_precisions

            ap = float(average_precisions(q.vector[None], gallery, [q.label], labels)[0])
        else:
            hits = np.zeros(k, dtype=bool)
            ap = None
        direction = "A2V" if q.modality == "audio" else "V2A"
        self.results = Results(q, direction, indices, scores, hits, ap)
        self.resultsChanged.emit()

    def set_checkpoint_model(
        self,
        model: Any,
        config: RunConfig,
        class_names: tuple[str, ...],
        emb: EpochEmbeddings | None,
    ) -> None:
        """A checkpoint loaded from disk becomes the model for queries and the map."""
        self.model_config = config
        self.model_class_names = class_names
        if emb is not None:
            self.current_run_id = None
            self.add_embeddings(self.CHECKPOINT_RUN, emb)
        else:
            self.model = model
            self.modelChanged.emit()

    def latest_checkpoint(self) -> Path | None:
        """The best (else last) checkpoint of the current run."""
        run = self.current_run
        if run is None:
            return None
        return (
            run.checkpoints.get("best")
            or run.checkpoints.get("last")
            or next(iter(run.checkpoints.values()), None)
        )

    # ----- tasks and errors --------------------------------------------------------------------
    def task_started(self, name: str) -> None:
        self._tasks.append(name)
        self.taskChanged.emit(name)

    def task_finished(self, name: str) -> None:
        if name in self._tasks:
            self._tasks.remove(name)
        self.taskChanged.emit(self._tasks[-1] if self._tasks else "")

    def report_error(self, title: str, message: str) -> None:
        self.message.emit(f"{title}: {message.splitlines()[0] if message else ''}")
        self.error.emit(title, message)

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


def embed_features(model: Any, feats: np.ndarray, modality: str) -> np.ndarray:
    """L2-normalised embeddings of raw features [n, D] with a model's audio or visual encoder."""
    from core.embedding import embed_features as core_embed

    return core_embed(model, np.asarray(feats, dtype=np.float32), modality)


def topk(queries: np.ndarray, gallery: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    from core.retrieval import topk as core_topk

    scores, indices = core_topk(queries, gallery, k)
    return np.asarray(scores), np.asarray(indices)


def map_scores_text(m: MapScores | None) -> str:
    if m is None:
        return "—"
    return f"A2V {m.a2v:.3f} · V2A {m.v2a:.3f} · avg {m.avg:.3f}"
