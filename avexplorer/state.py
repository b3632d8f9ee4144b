"""The app's state: one ``AppState`` holds what the views show and announces changes by signal.

What it holds: the dataset and the class colours every view shares; the training runs (live or
restored from their folders) with their step losses, epoch metrics, latest alignment snapshot,
test embeddings and 2-D layouts per epoch; which run is current; the model and the test
embeddings that queries search; the query, the retrieval direction, k and the results; the map's
projection method; thumbnails; the background tasks with their progress; the selection (which
audio and visual test items the user picked on the map, in the table or by class: every view
reads ``selection``, and ``selectionChanged`` says when it changes).

How views use it: a view reads the state, connects to the signals it renders, and sends intents
by calling the state's methods (``set_direction``, ``toggle_pause``, ``request_training``, ...).
Intents that need background work become *request* signals (``trainRequested``,
``fileQueryRequested``, ...) that ``avexplorer.jobs.controller.JobController`` carries out; its
results come back through the state's methods on the GUI thread. A view never calls another
view, and the window only arranges views. Each rule has one home here: which run is active
(``active_run``), what pause means (``toggle_pause``), the direction and the query's modality,
which embeddings a query searches. Nothing here draws or blocks.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QColor

import avexplorer.qt_compat  # noqa: F401 (before any Qt call: keeps PySide6 6.12 from crashing)
from avexplorer import run_records
from avexplorer.jobs.training_process import EpochEmbeddings
from avexplorer.projections import Layout
from core.data.dataset import AVDataset, Split
from core.errors import UserError
from core.evaluation.scores import MapScores
from core.exploration.selection import Selection, SelectionError, mean_query
from core.training.config import RunConfig
from core.training.events import (
    AlignmentSnapshot,
    CheckpointSaved,
    EpochEnd,
    Paused,
    PseudoLabels,
    Resumed,
    RunFinished,
    RunStarted,
    StepEnd,
)

DIRECTIONS = ("A2V", "V2A")
# The map's layouts (core.exploration.projection's methods) and the names the app shows for them.
PROJECTIONS = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}
ACTIVE_STATES = ("starting", "running", "paused")

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


def modality_of(direction: str) -> str:
    """The query's modality in a direction: audio for A2V, visual for V2A."""
    return "audio" if direction == "A2V" else "visual"


def direction_of(modality: str) -> str:
    return "A2V" if modality == "audio" else "V2A"


def dataset_name(data: AVDataset | None) -> str:
    if data is None:
        return ""
    return str(data.attrs.get("title") or Path(data.source).name or "dataset")


@dataclass
class Run:
    """One training run and everything it has reported so far."""

    id: int
    name: str
    # The run's settings: as requested (fields may be "auto") until it starts, then as resolved
    # by core.training.auto (what it trains with and records); ``requested`` keeps the request.
    config: RunConfig
    color: QColor
    out_dir: Path
    dataset: str = ""  # the name of the dataset it trained on
    dataset_key: dict[str, Any] = field(default_factory=dict)  # run_records.dataset_key of it
    created: float = field(default_factory=time.time)  # wall-clock start, for its label
    state: str = "starting"  # starting, running, paused, finished, stopped, failed
    restored: bool = False  # read back from its folder, not trained in this session
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
    pseudo: PseudoLabels | None = None  # the latest epoch's pseudo-labels (labelling view)
    embeddings: dict[int, EpochEmbeddings] = field(default_factory=dict)
    layouts: dict[tuple[int, str], Layout] = field(default_factory=dict)
    checkpoints: dict[str, Path] = field(default_factory=dict)
    finished: RunFinished | None = None
    visible: bool = True  # overlaid in the plots
    requested: RunConfig | None = None  # the settings as asked for, "auto" fields unresolved
    settings: str = ""  # what its "auto" fields became (RunStarted.settings)

    @property
    def method(self) -> str:
        return self.config.loss.method

    @property
    def active(self) -> bool:
        """Training now (or about to): the one definition every view and job uses."""
        return self.state in ACTIVE_STATES

    @property
    def best_val(self) -> float | None:
        return max((e.val.avg for e in self.epochs), default=None)

    def label(self) -> str:
        """'psd · demo digits · 2026-12-01 14:02 · best MAP 0.612', for lists and menus."""
        best = self.best_val
        parts = [
            self.method,
            self.dataset or "?",
            time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created)),
            f"best MAP {best:.3f}" if best is not None else "no epoch yet",
        ]
        return " · ".join(parts)

    def best_checkpoint(self) -> Path | None:
        return (
            self.checkpoints.get("best")
            or self.checkpoints.get("last")
            or next(iter(self.checkpoints.values()), None)
        )

    def eta_seconds(self) -> float | None:
        if self.last_step is None or self.total_steps == 0:
            return None
        done = self.last_step.global_step
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
    """What the user queries with: a dataset item, or a file (its raw features per modality).

    Which modality is embedded, and with which model, is not stored: it follows the state's
    direction and model, so a query never goes stale when either changes.
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


@dataclass
class Task:
    """A background task the status bar shows: its name, progress, and how to cancel it."""

    name: str
    done: int = 0
    total: int = 0  # 0: no count known
    unit: str = ""
    started: float = field(default_factory=time.monotonic)
    cancel: threading.Event | None = None  # set to cancel; None: cannot be cancelled

    def text(self) -> str:
        if not self.total:
            return self.name
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else None
        eta_text = f"{int(eta // 60)}:{int(eta % 60):02d}" if eta is not None else "?"
        return (
            f"{self.name}: {self.done}/{self.total} {self.unit} · {rate:.1f} {self.unit}/s"
            f" · ETA {eta_text}"
        )


class AppState(QObject):
    # ----- what changed ---------------------------------------------------------------------------
    datasetChanged = Signal()
    runAdded = Signal(int)
    runRemoved = Signal(int)
    unreadableRunsChanged = Signal()  # ``unreadable_runs`` holds the last scan's problems
    runStateChanged = Signal(int)
    runVisibilityChanged = Signal()
    stepsAppended = Signal(int)
    epochAdded = Signal(int, int)
    snapshotChanged = Signal(int)
    pseudoLabelsChanged = Signal(int)  # run id: ``Run.pseudo`` is a newer epoch's
    embeddingsAdded = Signal(int, int)  # run id (-1 for a loaded checkpoint), epoch
    layoutReady = Signal(int, int, str)  # run id, epoch, method
    metricsReady = Signal(int, int)  # run id, epoch: ``metrics[(rid, epoch)]`` is computed
    currentRunChanged = Signal(int)
    modelChanged = Signal()
    directionChanged = Signal(str)
    projectionChanged = Signal(str)
    queryChanged = Signal()
    resultsChanged = Signal()
    thumbnailsChanged = Signal()
    spectrogramsChanged = Signal()
    taskChanged = Signal(str)  # the text of the newest task, "" when idle
    selectionChanged = Signal()
    message = Signal(str)  # one-line status for the status bar
    error = Signal(str, str)  # title, message

    # ----- requests for background work (``JobController`` carries them out) --------------------
    trainRequested = Signal(object)  # RunConfig
    pauseRequested = Signal(int)  # run id
    resumeRequested = Signal(int)
    stopRequested = Signal(int)
    layoutRequested = Signal(int, int, str)  # run id, epoch, method
    metricsRequested = Signal(int, int)  # run id, epoch: compute every test metric
    fileQueryRequested = Signal(str)  # path of a video, sound, image or feature file
    checkpointRequested = Signal(str)  # path of a checkpoint to load for queries and the map
    spectrogramsRequested = Signal(list)  # clip paths whose spectrograms a view wants
    clipRequested = Signal(str)  # a demo clip to build now (someone wants to play it)
    clipReady = Signal(str)  # path: a requested clip file exists now
    checkpointLoaded = Signal(str, str)  # path, a label (method, dataset, date, best MAP)
    selectionExportRequested = Signal(str, str)  # kind ("csv", "npz", "h5"), path

    CHECKPOINT_RUN = -1  # run id under which a loaded checkpoint's embeddings are kept

    def __init__(self, runs_root: str | Path | None = None, parent: QObject | None = None):
        super().__init__(parent)
        # Where runs write their checkpoints; a temp folder unless the app gives a lasting one.
        self._tmp = Path(tempfile.mkdtemp(prefix="avexplorer-"))
        self.runs_root = Path(runs_root) if runs_root is not None else self._tmp
        self.dataset: AVDataset | None = None
        self.colors: list[QColor] = []
        self.runs: dict[int, Run] = {}
        # Run folders the last scan of ``runs_root`` could not read: (folder name, why).
        self.unreadable_runs: list[tuple[str, str]] = []
        self.current_run_id: int | None = None
        self.model: Any = None
        self.model_config: RunConfig | None = None
        self.model_class_names: tuple[str, ...] = ()
        self.gallery: EpochEmbeddings | None = None  # test embeddings the retrieval view searches
        self.query: Query | None = None
        self.query_vector: np.ndarray | None = None  # the query embedded in ``direction``
        self.direction = "A2V"
        self.projection = "pca"
        self.k = 10
        self.results: Results | None = None
        # A loaded checkpoint's test embeddings and layouts (it has no Run).
        self.checkpoint_embeddings: dict[int, EpochEmbeddings] = {}
        self.checkpoint_layouts: dict[tuple[int, str], Layout] = {}
        # Every test metric (core.evaluation.metrics.CrossModalMetrics) of a run's epoch, computed
        # on request.
        self.metrics: dict[tuple[int, int], Any] = {}
        self._metrics_pending: set[tuple[int, int]] = set()
        self.thumbnails: dict[str, Any] = {}  # clip path -> QImage
        self.durations: dict[str, float] = {}
        self.spectrograms: dict[str, Any] = {}  # clip path -> QImage (None: no sound)
        self._spectrograms_pending: set[str] = set()
        self.tasks: list[Task] = []
        self.selection: Selection | None = None  # test items picked; None when nothing is
        self.item_names: dict[str, tuple[str, ...]] = {}  # names given by show(), per split
        self._ids = itertools.count(1)
        # Unlabelled train clips, their pseudo-labels and the user's labels (labelling view).
        from avexplorer.labelling_state import LabellingState
        from avexplorer.time_state import TimeState

        self.labelling = LabellingState(self)
        # Clips' segments and the strips of the current results (Time tab, result rows).
        self.time = TimeState(self)

    # ----- dataset -----------------------------------------------------------------------------
    def set_dataset(self, data: AVDataset, names: dict[str, tuple[str, ...]] | None = None) -> None:
        """Open ``data``; ``names`` (per split) name items that have no clip file."""
        self.dataset = data
        self.item_names = dict(names or {})
        self.selection = None
        self.colors = class_colors(data.num_classes)
        self.thumbnails.clear()
        self.spectrograms.clear()
        self._spectrograms_pending.clear()
        self.query = None
        self.query_vector = None
        self.results = None
        # Embeddings of another dataset cannot be searched.
        self.gallery = None
        self.model = None
        self.checkpoint_embeddings, self.checkpoint_layouts = {}, {}
        self.metrics.clear()
        self._metrics_pending.clear()
        self.datasetChanged.emit()
        self.queryChanged.emit()
        self.resultsChanged.emit()
        self.modelChanged.emit()
        self.selectionChanged.emit()
        self.restore_runs()

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
        names = self.item_names.get(split)
        if names is not None:
            return names[index]
        path = self.item_path(split, index)
        return Path(path).name if path else f"{split} #{index}"

    def class_name(self, label: int | None) -> str:
        if label is None or self.dataset is None:
            return "?"
        return self.dataset.class_names[label] if label >= 0 else "unlabelled"

    def set_thumbnails(self, batch: dict[str, Any], durations: dict[str, float]) -> None:
        self.thumbnails.update(batch)
        self.durations.update(durations)
        self.thumbnailsChanged.emit()

    def request_clip(self, path: str) -> bool:
        """Ask for a missing clip of the demo to be built now; False for other datasets' clips
        (``clipReady`` follows when it exists)."""
        root = self.dataset.attrs.get("clips_dir") if self.dataset is not None else None
        if not root or Path(path).parent.parent != Path(root):
            return False
        self.clipRequested.emit(path)
        return True

    def request_spectrograms(self, paths: list[str]) -> None:
        """Ask for the spectrograms of clips (each asked for once; results come by signal)."""
        wanted = [
            p for p in paths if p not in self.spectrograms and p not in self._spectrograms_pending
        ]
        if wanted:
            self._spectrograms_pending.update(wanted)
            self.spectrogramsRequested.emit(wanted)

    def set_spectrograms(self, batch: dict[str, Any]) -> None:
        self.spectrograms.update(batch)
        self._spectrograms_pending.difference_update(batch)
        self.spectrogramsChanged.emit()

    # ----- runs --------------------------------------------------------------------------------
    @property
    def active_run(self) -> Run | None:
        """The run that is training (at most one: two would fight over the cores)."""
        return next((r for r in self.runs.values() if r.active), None)

    def request_training(self, config: RunConfig) -> None:
        if self.active_run is not None:
            self.message.emit("A run is already in progress: stop it first.")
        elif self.dataset is None:
            self.report_error("Cannot train", "Open a dataset first.")
        else:
            self.trainRequested.emit(config)

    def toggle_pause(self) -> None:
        run = self.active_run
        if run is None:
            return
        if run.state == "paused":
            self.resumeRequested.emit(run.id)
        else:
            self.pauseRequested.emit(run.id)

    def stop_training(self) -> None:
        run = self.active_run
        if run is not None:
            self.stopRequested.emit(run.id)

    def new_run(self, config: RunConfig) -> Run:
        rid = next(self._ids)
        method = config.loss.method
        run = Run(
            id=rid,
            name=f"{method} {rid}",
            config=config,
            requested=config,
            color=QColor(_RUN_PALETTE[(rid - 1) % len(_RUN_PALETTE)]),
            out_dir=self.runs_root / f"{time.strftime('%Y%m%d-%H%M%S')}-{method}-{rid}",
            dataset=dataset_name(self.dataset),
            dataset_key=run_records.dataset_key(self.dataset),
        )
        run_records.write(run.out_dir, run_records.record_of(run, self.dataset))
        self._add_run(run)
        return run

    def _add_run(self, run: Run) -> None:
        self.runs[run.id] = run
        self.current_run_id = run.id
        self.runAdded.emit(run.id)
        self.currentRunChanged.emit(run.id)

    def restore_runs(self) -> int:
        """Read back the runs in ``runs_root`` made on this dataset (curves, MAP, r_t)."""
        if self.dataset is None:
            return 0
        known = {r.out_dir.resolve() for r in self.runs.values()}
        skipped: list[tuple[str, str]] = []
        n = 0

        def problem(folder: Path, why: str) -> None:
            if folder.resolve() not in known:
                skipped.append((folder.name, why))

        for folder, record in run_records.scan(self.runs_root, problem):
            if folder.resolve() in known or not run_records.matches(record, self.dataset):
                continue
            if "from_checkpoint" in record:  # identified by its data: it is the open dataset
                record = {**record, "dataset_key": run_records.dataset_key(self.dataset)}
            rid = next(self._ids)
            try:
                run = self._restored_run(rid, folder, record)
            except (OSError, ValueError, KeyError, TypeError) as e:
                problem(folder, str(e) or type(e).__name__)
                continue
            self.runs[rid] = run
            self.runAdded.emit(rid)
            n += 1
        self.unreadable_runs = skipped
        self.unreadableRunsChanged.emit()
        if skipped:
            self.message.emit(
                f"Could not read {len(skipped)} run folder{'s' if len(skipped) > 1 else ''} in "
                f"{self.runs_root}: " + "; ".join(f"{name} ({why})" for name, why in skipped)
            )
        return n

    def _restored_run(self, rid: int, folder: Path, record: dict[str, Any]) -> Run:
        config = RunConfig.from_saved(record["config"])
        requested = record.get("requested")
        run = Run(
            id=rid,
            name=str(record.get("name") or f"{config.loss.method} {rid}"),
            config=config,
            color=QColor(_RUN_PALETTE[(rid - 1) % len(_RUN_PALETTE)]),
            out_dir=folder,
            dataset=str(record.get("dataset", "")),
            dataset_key=dict(record.get("dataset_key") or {}),
            created=run_records.when(record),
            restored=True,
            requested=RunConfig.from_dict(requested) if requested else None,
            settings=str(record.get("settings", "")),
            steps_per_epoch=int(record.get("steps_per_epoch", 0)),
            total_epochs=int(record.get("total_epochs", 0)),
        )
        state = str(record.get("state", "stopped"))
        run.state = "stopped" if state in ACTIVE_STATES else state  # the app quit mid-run
        run.epochs = run_records.read_epochs(folder)
        run.steps, run.losses, run.r_steps = run_records.read_steps(folder)
        run.total_steps = run.steps_per_epoch * run.total_epochs
        run.checkpoints = run_records.checkpoints(folder)
        run.visible = False  # overlaid when the user checks it
        return run

    @property
    def current_run(self) -> Run | None:
        return self.runs.get(self.current_run_id) if self.current_run_id is not None else None

    def set_current_run(self, rid: int) -> None:
        if rid in self.runs and rid != self.current_run_id:
            self.current_run_id = rid
            run, embeddings = self.runs[rid], self.embeddings_for(rid)
            if embeddings:
                self.use_embeddings(embeddings[max(embeddings)], run.config)
            elif run.restored and run.best_checkpoint() is not None:
                self.checkpointRequested.emit(str(run.best_checkpoint()))
            self.currentRunChanged.emit(rid)

    def set_run_visible(self, rid: int, visible: bool) -> None:
        if rid in self.runs:
            self.runs[rid].visible = visible
            self.runVisibilityChanged.emit()

    def remove_run(self, rid: int, delete_files: bool = False) -> None:
        """Forget a run that is not training; with ``delete_files`` also delete its folder."""
        run = self.runs.get(rid)
        if run is None or run.active:
            return
        del self.runs[rid]
        self._forget_metrics(rid)
        if delete_files and run.out_dir.is_dir():
            shutil.rmtree(run.out_dir, ignore_errors=True)
        if self.current_run_id == rid:
            self.current_run_id = max(self.runs) if self.runs else None
        self.runRemoved.emit(rid)
        self.runVisibilityChanged.emit()
        self.currentRunChanged.emit(self.current_run_id or 0)

    def handle_events(self, rid: int, events: list[Any]) -> None:
        """Fold a batch of training events into the run (called on the GUI thread)."""
        run = self.runs.get(rid)
        if run is None:
            return
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
                self._run_resolved(run, ev)
                self.runStateChanged.emit(rid)
            elif isinstance(ev, AlignmentSnapshot):
                # Full batches only: an epoch's short last batch (6 x 6 of a batch of 64) would
                # replace a readable matrix with a few cells.
                if run.snapshot is None or len(ev.labels) >= len(run.snapshot.labels):
                    run.snapshot = ev
                    self.snapshotChanged.emit(rid)
            elif isinstance(ev, PseudoLabels):
                run.pseudo = ev
                self.pseudoLabelsChanged.emit(rid)
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

    def _run_resolved(self, run: Run, ev: RunStarted) -> None:
        """The run started: its config is now the one it trains with, "auto" resolved; its
        record says so at once (a run the app loses mid-way keeps what it ran with)."""
        run.config = RunConfig.from_dict(ev.config)
        run.settings = ev.settings
        if ev.settings:
            self.message.emit(f"{run.name}: {ev.settings}")
        if not run.restored:
            # A failed write is said when the run ends, where the record is written again.
            with contextlib.suppress(OSError):
                run_records.write(run.out_dir, run_records.record_of(run, self.dataset))

    def run_failed(self, rid: int, message: str) -> None:
        if rid in self.runs:
            self.runs[rid].state = "failed"
            self.runStateChanged.emit(rid)
        self.report_error("Training failed", message)

    def run_ended(self, rid: int) -> None:
        """The run's worker has ended: a run that never reported its end counts as stopped."""
        run = self.runs.get(rid)
        if run is not None and run.active:
            run.state = "stopped"
            self.runStateChanged.emit(rid)
        if run is not None and not run.restored:
            try:
                run_records.write(run.out_dir, run_records.record_of(run, self.dataset))
                run_records.write_steps(run.out_dir, run.steps, run.losses, run.r_steps)
            except OSError as e:  # core.atomic.WriteError too: a full disk, a read-only folder
                self.report_error(
                    "Run record not saved",
                    f"{run.name} {run.state}, but its record in {run.out_dir} could not be "
                    f"updated ({e}); its checkpoints and history.jsonl are as the run left them.",
                )

    def add_embeddings(self, rid: int, emb: EpochEmbeddings) -> None:
        run = self.runs.get(rid)
        if run is not None:
            run.embeddings[emb.epoch] = emb
        elif rid == self.CHECKPOINT_RUN:
            self.checkpoint_embeddings = {emb.epoch: emb}
            self.checkpoint_layouts = {}
            self._forget_metrics(rid)
        if run is None or (rid == self.current_run_id and self.trained_on_open_dataset(run)):
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
        return run.embeddings if run is not None and self.trained_on_open_dataset(run) else {}

    def trained_on_open_dataset(self, run: Run) -> bool:
        """Whether ``run`` trained on data shaped as the open dataset (classes, dimensions, split
        sizes): only then do its test embeddings describe the open test split, for the map, the
        metrics and queries. A run of another dataset keeps its curves."""
        return run.dataset_key == run_records.dataset_key(self.dataset)

    def latest_epoch(self, rid: int) -> int | None:
        """The newest epoch of ``rid`` with test embeddings (what its metrics describe)."""
        embeddings = self.embeddings_for(rid)
        return max(embeddings) if embeddings else None

    def request_metrics(self, rid: int, epoch: int) -> None:
        """Ask for every test metric of a run's epoch (announced by ``metricsReady``)."""
        key = (rid, epoch)
        if key in self.metrics:
            self.metricsReady.emit(rid, epoch)
        elif key not in self._metrics_pending and epoch in self.embeddings_for(rid):
            self._metrics_pending.add(key)
            self.metricsRequested.emit(rid, epoch)

    def set_metrics(self, rid: int, epoch: int, metrics: Any) -> None:
        self._metrics_pending.discard((rid, epoch))
        if epoch in self.embeddings_for(rid):  # else the run or dataset went meanwhile
            self.metrics[(rid, epoch)] = metrics
            self.metricsReady.emit(rid, epoch)

    def metrics_failed(self, rid: int, epoch: int, message: str) -> None:
        self._metrics_pending.discard((rid, epoch))
        self.report_error("Metrics failed", message)

    def _forget_metrics(self, rid: int) -> None:
        for key in [k for k in self.metrics if k[0] == rid]:
            del self.metrics[key]
        self._metrics_pending = {k for k in self._metrics_pending if k[0] != rid}

    def run_name(self, rid: int) -> str:
        """A run's name for lists, "checkpoint" for a loaded checkpoint."""
        run = self.runs.get(rid)
        return run.name if run is not None else "loaded checkpoint"

    def previous_layout(self, rid: int, epoch: int, method: str) -> Layout | None:
        """The layout of the nearest earlier epoch with ``method`` (for alignment, and as the start
        of a UMAP or t-SNE)."""
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
        self._requery()

    @property
    def query_modality(self) -> str:
        return modality_of(self.direction)

    def set_direction(self, direction: str) -> None:
        if direction not in DIRECTIONS or direction == self.direction:
            return
        self.direction = direction
        self.directionChanged.emit(direction)
        self._requery()

    def set_projection(self, method: str) -> None:
        """Show the map in ``method`` (a key of ``PROJECTIONS``, in any case)."""
        method = method.lower()
        if method in PROJECTIONS and method != self.projection:
            self.projection = method
            self.projectionChanged.emit(method)

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
        """Query with dataset item (split, index); a ``modality`` sets the direction too."""
        if self.dataset is None:
            return
        self.query = Query(
            self.item_name(split, index),
            int(self.dataset.split(split).labels[index]),
            split,
            index,
            self.item_path(split, index),
        )
        self._set_direction_quietly(modality)
        self.queryChanged.emit()
        self._requery()

    def query_with_file(self, path: str) -> None:
        """Ask for a file (video, sound, image, .npz/.npy of features) to be the query."""
        if self.model is None:
            self.report_error(
                "No model yet", "Train a model or load a checkpoint before querying with a file."
            )
            return
        self.fileQueryRequested.emit(path)

    def set_file_query(self, path: str, features: dict[str, np.ndarray], image: Any) -> None:
        """A decoded file becomes the query (its features are embedded here, as needed)."""
        self.query = Query(Path(path).name, None, path=path, features=features, image=image)
        if self.query_modality not in features and features:
            # A sound has no picture (and a picture no sound): query with what the file has.
            self._set_direction_quietly(next(iter(features)))
        self.queryChanged.emit()
        self._requery()

    def _set_direction_quietly(self, modality: str | None) -> None:
        if modality is not None and direction_of(modality) != self.direction:
            self.direction = direction_of(modality)
            self.directionChanged.emit(self.direction)

    def _requery(self) -> None:
        """Embed the query in the current direction with the current model, then search."""
        q = self.query
        self.query_vector = None
        if q is not None and q.group is not None:
            self.query_vector = self._group_vector(q.group)
        elif q is not None and q.is_file:
            from avexplorer.jobs.file_query import MissingModality, embed_file_features

            try:
                self.query_vector = embed_file_features(
                    self.model, q.features or {}, self.query_modality, q.name
                )
            except MissingModality as e:
                self.message.emit(str(e))
            except UserError as e:
                self.report_error("Cannot query with this file", str(e))
        elif q is not None:
            self.query_vector = self.embed_item(q.split, q.index, self.query_modality)  # type: ignore[arg-type]
            if self.query_vector is None:
                self.message.emit("Train a model or load a checkpoint to run queries.")
        self.update_results()

    def update_results(self) -> None:
        q, g, v = self.query, self.gallery, self.query_vector
        if q is None or g is None or v is None or self.dataset is None:
            self.results = None
            self.resultsChanged.emit()
            return
        from core.evaluation.metrics import average_precisions
        from core.evaluation.retrieval import class_hits

        gallery = g.visual if self.direction == "A2V" else g.audio
        k = min(self.k, len(gallery))
        scores, indices = topk(v[None, :], gallery, k)
        labels = self.dataset.test.labels
        hits, ap = None, None
        if q.label is not None:
            hits = class_hits(indices, labels, np.array([q.label]))[0]
            ap = float(average_precisions(v[None], gallery, [q.label], labels)[0])
        self.results = Results(q, self.direction, indices[0], scores[0], hits, ap)
        self.resultsChanged.emit()

    def set_checkpoint_model(
        self,
        model: Any,
        config: RunConfig,
        class_names: tuple[str, ...],
        emb: EpochEmbeddings | None,
        rid: int | None = None,
    ) -> None:
        """A checkpoint read from disk becomes the model for queries and the map.

        With ``rid`` (a restored run) its embeddings are kept with that run, made current; else
        under ``CHECKPOINT_RUN``.
        """
        self.model_config = config
        self.model_class_names = class_names
        if emb is None:
            self.model = model
            self.modelChanged.emit()
            self._requery()
        elif rid is not None and rid in self.runs:
            # Loading a run's checkpoint (from the run list, File > Open or show(run_dir))
            # makes that run the current one: its embeddings are then the ones the views use.
            changed = rid != self.current_run_id
            self.current_run_id = rid
            self.add_embeddings(rid, emb)
            if changed:
                self.currentRunChanged.emit(rid)
        else:
            self.current_run_id = None
            self.add_embeddings(self.CHECKPOINT_RUN, emb)

    def latest_checkpoint(self) -> Path | None:
        """The best (else last) checkpoint of the current run."""
        run = self.current_run
        return run.best_checkpoint() if run is not None else None

    # ----- selection ---------------------------------------------------------------------------
    def select(self, sel: Selection, mode: str = "replace") -> None:
        """Make ``sel`` the selection, or add it to / subtract it from the current one."""
        if self.dataset is None or len(sel) != len(self.dataset.test):
            return
        current = self.selection or Selection.empty(len(sel))
        new = current.combine(sel, mode)
        new = new if new else None
        if (new is None and self.selection is None) or (
            new is not None and new.equals(self.selection)
        ):
            return
        self.selection = new
        self.selectionChanged.emit()

    def select_points(self, mask: np.ndarray, mode: str = "replace") -> None:
        """Select map points (a mask over audio rows then visual rows, as in a Layout)."""
        self.select(Selection.of_points(mask), mode)

    def select_clips(self, indices: Any, mode: str = "replace") -> None:
        """Select both sides of test clips."""
        if self.dataset is not None:
            self.select(Selection.of_clips(len(self.dataset.test), indices), mode)

    def select_class(self, class_id: int, mode: str = "replace") -> None:
        if self.dataset is not None:
            self.select(Selection.of_class(self.dataset.test.labels, class_id), mode)

    def clear_selection(self) -> None:
        if self.selection is not None:
            self.selection = None
            self.selectionChanged.emit()

    def _group_vector(self, group: Selection) -> np.ndarray | None:
        g = self.gallery
        if g is None or len(group) != len(g.audio):
            return None
        side = self.query_modality
        return mean_query(g.audio if side == "audio" else g.visual, getattr(group, side))

    def query_with_selection(self, modality: str) -> None:
        """Query with the mean of the selection's ``modality`` items (A2V for audio, V2A for
        visual); the mean follows the model, like any query."""
        sel = self.selection
        if sel is None or self.gallery is None:
            self.report_error(
                "Nothing to query with", "Select items on the map (with a model loaded) first."
            )
            return
        if not getattr(sel, modality).any():
            self.message.emit(f"The selection holds no {modality} item to query with.")
            return
        self.query = Query(f"mean of {sel.count} selected items", None, group=sel)
        self._set_direction_quietly(modality)
        self.queryChanged.emit()
        self._requery()

    def export_selection(self, kind: str, path: str) -> None:
        """Write the selection: ``csv`` (clip list), ``npz`` (embeddings) or ``h5`` (features);
        ``JobController`` writes it in the background."""
        if self.selection is None:
            self.report_error("Nothing to export", "Select items on the map first.")
        elif kind == "npz" and self.gallery is None:
            self.report_error("No embeddings", "Train a model or load a checkpoint first.")
        else:
            self.selectionExportRequested.emit(kind, path)

    def selections_file(self) -> Path | None:
        """Where the dataset's named selections are kept."""
        from core.exploration.selection_files import selections_file

        if self.dataset is None:
            return None
        fallback = self._tmp if self.runs_root == self._tmp else self.runs_root.parent
        return selections_file(self.dataset, fallback / "selections")

    def saved_selections(self) -> list[str]:
        from core.exploration.selection_files import read_named

        path = self.selections_file()
        try:
            return sorted(read_named(path)["selections"]) if path is not None else []
        except SelectionError as e:
            self.message.emit(str(e))
            return []

    def save_selection(self, name: str) -> None:
        from core.exploration.selection_files import fingerprint, save_named

        path, data, sel = self.selections_file(), self.dataset, self.selection
        if path is None or data is None or sel is None:
            self.report_error("Nothing to save", "Select items on the map first.")
            return
        try:
            save_named(path, name, sel, fingerprint(data.test.labels, data.class_names))
        except SelectionError as e:
            self.report_error("Selection not saved", str(e))
            return
        self.message.emit(f"Saved selection {name.strip()!r} in {path}")

    def load_selection(self, name: str) -> None:
        from core.exploration.selection_files import fingerprint, load_named

        path, data = self.selections_file(), self.dataset
        if path is None or data is None:
            return
        try:
            sel = load_named(path, name, fingerprint(data.test.labels, data.class_names))
        except SelectionError as e:
            self.report_error("Selection not loaded", str(e))
            return
        self.select(sel)

    # ----- tasks and errors --------------------------------------------------------------------
    def task_started(self, name: str, cancel: threading.Event | None = None) -> Task:
        task = Task(name, cancel=cancel)
        self.tasks.append(task)
        self.taskChanged.emit(task.text())
        return task

    def task_progress(self, task: Task, done: int, total: int, unit: str = "") -> None:
        task.done, task.total, task.unit = done, total, unit or task.unit
        if self.tasks and self.tasks[-1] is task:
            self.taskChanged.emit(task.text())

    def task_finished(self, task: Task) -> None:
        if task in self.tasks:
            self.tasks.remove(task)
        self.taskChanged.emit(self.tasks[-1].text() if self.tasks else "")

    @property
    def cancellable(self) -> bool:
        """Whether Cancel has something to stop: the active run, or a cancellable task."""
        return self.active_run is not None or any(t.cancel is not None for t in self.tasks)

    def cancel(self) -> None:
        """Cancel: stop the active run, else the newest task that can be cancelled."""
        if self.active_run is not None:
            self.stop_training()
            return
        for task in reversed(self.tasks):
            if task.cancel is not None and not task.cancel.is_set():
                task.cancel.set()
                self.message.emit(f"Cancelling {task.name}…")
                return

    def cancel_all(self) -> None:
        """The app is quitting: every cancellable task and the active run stop now."""
        for task in self.tasks:
            if task.cancel is not None:
                task.cancel.set()
        self.stop_training()

    def report_error(self, title: str, message: str) -> None:
        self.message.emit(f"{title}: {message.splitlines()[0] if message else ''}")
        self.error.emit(title, message)

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


def embed_features(model: Any, feats: np.ndarray, modality: str) -> np.ndarray:
    """L2-normalised embeddings of raw features [n, D] with a model's audio or visual encoder."""
    from core.training.embedding import embed_features as core_embed

    return core_embed(model, np.asarray(feats, dtype=np.float32), modality)


def topk(queries: np.ndarray, gallery: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    from core.evaluation.retrieval import topk as core_topk

    scores, indices = core_topk(queries, gallery, k)
    return np.asarray(scores), np.asarray(indices)


def map_scores_text(m: MapScores | None) -> str:
    if m is None:
        return "—"
    return f"A2V {m.a2v:.3f} · V2A {m.v2a:.3f} · avg {m.avg:.3f}"
