"""The labelling part of the app's state: which train clips lack a label, what the teacher thinks
they are, and the labels the user gives them.

One ``LabellingState`` lives in ``AppState.labelling``; the root gives it the parts it reads
(the catalog, the runs, the retrieval's model settings, a loaded checkpoint's embeddings). Its
``candidates`` are the unlabelled train clips of the current run or loaded checkpoint (the pairs
whose labels ``data.label_fraction`` hid, or the dataset's own unlabelled pairs) with
``PseudoLabels``: the latest epoch's a live run sent, else those recomputed from the checkpoint
the app loaded for a run read back from its folder or opened from a file
(``avexplorer.jobs.controller`` computes them in a worker and hands them to ``set_recomputed``).
``note`` says in words why a source has none. ``assignments`` maps train positions to the
classes the user gave them (accepted pseudo-labels or picked classes). Views read both and call
``assign`` / ``accept`` / ``save``; saving is a request (``saveRequested``) that
``avexplorer.jobs.labels.LabelJobs`` writes in a worker through ``core.data.labels``. Nothing here
draws or blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from avexplorer.state.catalog import Catalog
from avexplorer.state.embeddings import Embeddings
from avexplorer.state.retrieval import Retrieval
from avexplorer.state.run import CHECKPOINT_RUN, Run
from avexplorer.state.runs import Runs
from avexplorer.state.signals import StateSignals
from core.data.dataset import SPLITS, UNLABELLED, AVDataset
from core.data.labels import keep_labels, with_label_fraction
from core.training.config import RunConfig, method_config
from core.training.events import PseudoLabels

MANIFEST_SUFFIXES = (".csv",)


@dataclass(frozen=True)
class Candidates:
    """The clips the labelling view lists, one row each, in train-split order."""

    indices: np.ndarray  # [U] int64 positions in the train split
    predicted: np.ndarray  # [U] int64 pseudo-label, -1 when none is known yet
    confidence: np.ndarray  # [U] float32 the pseudo-label's probability, NaN when unknown
    true_labels: np.ndarray | None = None  # [U] the hidden labels when a low rate is simulated
    epoch: int | None = None  # the epoch of the pseudo-labels, from 1
    source: str = ""  # "teacher" or "student" ("" without pseudo-labels)
    accuracy: float | None = None

    def __len__(self) -> int:
        return len(self.indices)

    @classmethod
    def empty(cls) -> Candidates:
        z = np.zeros(0, np.int64)
        return cls(z, z, np.zeros(0, np.float32))


@dataclass(frozen=True)
class SaveRequest:
    path: str
    kind: str  # "h5" (a copy of the feature file) or "manifest" (a CSV of the clips)
    data: AVDataset  # the labels to start from (``LabellingState.base_data``)
    assignments: dict[int, int]  # train position -> class, on top
    retrain: RunConfig | None = None  # then open the new file and train this run on it


def hidden_positions(data: AVDataset, config: RunConfig | None) -> np.ndarray:
    """Train positions without a label in a run of ``config`` on ``data``: the dataset's own
    unlabelled pairs, and those ``data.label_fraction`` hides (as ``core.training.loop`` does)."""
    labels = data.train.labels
    if config is None or config.data.label_fraction >= 1.0:
        return np.flatnonzero(labels == UNLABELLED)
    keep = keep_labels(labels, config.data.label_fraction, config.data.label_seed)
    return np.flatnonzero(~keep)


def manifest_rows(data: AVDataset, assignments: dict[int, int]) -> list[tuple[str, str, str]]:
    """Every clip of ``data`` as a manifest row (path, class name or "", split), with the
    ``assignments`` (train position -> class) applied to the train labels."""
    rows: list[tuple[str, str, str]] = []
    for name in SPLITS:
        split = data.split(name)
        if not len(split):
            continue
        if split.paths is None:
            raise ValueError(
                f"the {name} split has no clip paths (features only): save a feature file instead"
            )
        labels = split.labels.copy()
        if name == "train":
            for i, c in assignments.items():
                labels[i] = c
        for path, c in zip(split.paths, labels, strict=True):
            rows.append((path, data.class_names[c] if c >= 0 else "", name))
    return rows


class LabellingState(QObject):
    candidatesChanged = Signal()  # new pseudo-labels, another run, another dataset
    assignmentsChanged = Signal()
    saveRequested = Signal(object)  # a SaveRequest (``LabelJobs`` writes it)

    def __init__(
        self,
        signals: StateSignals,
        catalog: Catalog,
        runs: Runs,
        retrieval: Retrieval,
        embeddings: Embeddings,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.signals, self.catalog, self.runs = signals, catalog, runs
        self.retrieval, self.embeddings = retrieval, embeddings
        self.candidates = Candidates.empty()
        self.assignments: dict[int, int] = {}  # train position -> class id the user gave
        self.run_id: int | None = None  # whose pseudo-labels ``candidates`` holds
        self.source_name = ""  # the run's name, or "the loaded checkpoint"
        self.note = ""  # why ``candidates`` has no pseudo-labels, in words ("" when it has)
        # Pseudo-labels recomputed from a loaded checkpoint, and why not where they cannot be,
        # per run id (``CHECKPOINT_RUN`` for a checkpoint opened from a file).
        self.recomputed: dict[int, PseudoLabels] = {}
        self.unavailable: dict[int, str] = {}
        self._computing: dict[int, str] = {}  # run id -> the checkpoint file being read
        self._row_of: dict[int, int] = {}
        signals.datasetChanged.connect(self._dataset_changed)
        signals.currentRunChanged.connect(lambda _rid: self.refresh())
        signals.runAdded.connect(lambda _rid: self.refresh())
        signals.pseudoLabelsChanged.connect(self._pseudo_changed)

    # ----- what the view lists -----------------------------------------------------------------
    def _run(self) -> Run | None:
        """The current run if it trained on the open dataset."""
        run, data = self.runs.current_run, self.catalog.dataset
        if run is None or data is None or run.dataset != self.catalog.name:
            return None
        return run

    def _source(self) -> tuple[int, str, RunConfig | None, Run | None] | None:
        """(id, name, config, run) of what the candidates come from: the current run if it
        trained on the open dataset, else a checkpoint loaded from a file; None without either."""
        run = self._run()
        if run is not None:
            return run.id, run.name, run.config, run
        config = self.retrieval.model_config
        if (
            self.runs.current_run_id is None
            and self.embeddings.checkpoint_embeddings
            and config is not None
        ):
            return CHECKPOINT_RUN, "the loaded checkpoint", config, None
        return None

    def pseudo_computing(self, rid: int, checkpoint: str) -> None:
        """Pseudo-labels of ``rid`` are being recomputed from the file ``checkpoint``."""
        self._computing[rid] = checkpoint
        self.recomputed.pop(rid, None)
        self.unavailable.pop(rid, None)
        self.refresh()

    def set_recomputed(self, rid: int, pseudo: PseudoLabels | None, data: AVDataset) -> None:
        """Pseudo-labels of ``rid`` recomputed on ``data`` (None: it has no unlabelled pairs)."""
        self._computing.pop(rid, None)
        if data is not self.catalog.dataset:
            return  # another dataset was opened meanwhile
        if pseudo is not None:
            self.recomputed[rid] = pseudo
        self.refresh()

    def pseudo_unavailable(self, rid: int, reason: str) -> None:
        """Pseudo-labels of ``rid`` cannot be recomputed; ``reason`` says why."""
        self._computing.pop(rid, None)
        lines = reason.strip().splitlines()
        self.unavailable[rid] = lines[0] if lines else "an unknown error"
        self.refresh()

    def _note(self, rid: int, name: str, run: Run | None) -> str:
        """Why ``rid`` has no pseudo-labels to show, in words."""
        if rid in self._computing:
            return f"Computing the pseudo-labels of {name} from {self._computing[rid]}…"
        if rid in self.unavailable:
            return f"No pseudo-labels from {name}: {self.unavailable[rid]}."
        if run is None:
            return f"No pseudo-labels from {name}."
        if run.config.loss.method == "infonce":
            return f"{run.name} trains infonce, which has no class head and makes no pseudo-labels."
        if run.restored and not run.checkpoints:
            return (
                f"{run.name} was read back from its folder, which holds no checkpoint "
                "(model.pt or last.pt) to recompute its pseudo-labels from."
            )
        if run.restored:
            return f"{run.name}'s pseudo-labels come once its checkpoint is loaded."
        return f"{run.name} has sent no pseudo-labels yet (they come at each epoch's end)."

    def _dataset_changed(self) -> None:
        self.assignments.clear()
        self.recomputed.clear()
        self.unavailable.clear()
        self._computing.clear()
        self.refresh()
        self.assignmentsChanged.emit()

    def _pseudo_changed(self, rid: int) -> None:
        if rid == self.runs.current_run_id:
            self.refresh()

    def refresh(self) -> None:
        """Recompute the candidates from the current run (or loaded checkpoint) and the dataset."""
        data, source = self.catalog.dataset, self._source()
        rid, name, config, run = source if source is not None else (None, "", None, None)
        self.source_name, self.note = name, ""
        if data is None:
            self.candidates, self.run_id = Candidates.empty(), None
        else:
            pseudo = run.pseudo if run is not None else None
            if pseudo is None and rid is not None:
                pseudo = self.recomputed.get(rid)
            if pseudo is not None and (pseudo.indices < len(data.train)).all():
                self.candidates = Candidates(
                    pseudo.indices.astype(np.int64),
                    pseudo.predicted.astype(np.int64),
                    pseudo.confidence.astype(np.float32),
                    pseudo.true_labels,
                    pseudo.epoch,
                    pseudo.source,
                    pseudo.accuracy,
                )
            else:
                idx = hidden_positions(data, config)
                true = data.train.labels[idx] if config is not None and len(idx) else None
                true = true if true is not None and (true >= 0).any() else None
                unknown = np.full(len(idx), np.nan, np.float32)
                self.candidates = Candidates(idx, np.full(len(idx), -1, np.int64), unknown, true)
                if rid is not None:
                    self.note = self._note(rid, name, run)
            self.run_id = rid
        self._row_of = {int(i): r for r, i in enumerate(self.candidates.indices)}
        self.candidatesChanged.emit()

    def row_of(self, index: int) -> int | None:
        """The candidate row of train position ``index`` (None: it is not a candidate)."""
        return self._row_of.get(int(index))

    def accuracy_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(epoch numbers from 1, pseudo-label accuracy) of the current run's epochs that know
        it (``EpochEnd.pseudo_accuracy``: only when labels were hidden to simulate a rate)."""
        run = self._run()
        points = [
            (e.epoch, e.pseudo_accuracy)
            for e in (run.epochs if run is not None else [])
            if e.pseudo_accuracy is not None
        ]
        if not points:
            return np.zeros(0), np.zeros(0)
        x, y = zip(*points, strict=True)
        return np.asarray(x, float), np.asarray(y, float)

    # ----- the user's labels -------------------------------------------------------------------
    def assign(self, index: int, class_id: int) -> None:
        """Give train clip ``index`` the class ``class_id`` (-1 takes the user's label back)."""
        data = self.catalog.dataset
        if data is None or not 0 <= index < len(data.train):
            return
        if class_id == UNLABELLED:
            if self.assignments.pop(int(index), None) is None:
                return
        elif 0 <= class_id < data.num_classes:
            if self.assignments.get(int(index)) == class_id:
                return
            self.assignments[int(index)] = int(class_id)
        else:
            self.signals.message.emit(
                f"There is no class {class_id + 1}: this dataset has {data.num_classes}."
            )
            return
        self.assignmentsChanged.emit()

    def accept(self, index: int) -> None:
        """Take the pseudo-label of train clip ``index`` as its label."""
        row = self.row_of(index)
        predicted = int(self.candidates.predicted[row]) if row is not None else UNLABELLED
        if predicted == UNLABELLED:
            self.signals.message.emit("No pseudo-label for this clip yet: train a run first.")
            return
        self.assign(index, predicted)

    def accept_confident(self, threshold: float) -> int:
        """Accept every pseudo-label at least ``threshold`` confident that the user has not
        labelled; returns how many were accepted."""
        c = self.candidates
        ok = (c.predicted >= 0) & (c.confidence >= threshold)
        n = 0
        for i, p in zip(c.indices[ok], c.predicted[ok], strict=True):
            if int(i) not in self.assignments:
                self.assignments[int(i)] = int(p)
                n += 1
        if n:
            self.assignmentsChanged.emit()
        return n

    def clear_assignments(self) -> None:
        if self.assignments:
            self.assignments.clear()
            self.assignmentsChanged.emit()

    # ----- saving ------------------------------------------------------------------------------
    def base_data(self) -> AVDataset | None:
        """The labels the saved file starts from: what the current run trained on (with the
        labels it hid as -1), else the dataset as opened."""
        data, source = self.catalog.dataset, self._source()
        config = source[2] if source is not None else None
        if data is None or config is None or config.data.label_fraction >= 1.0:
            return data
        return with_label_fraction(data, config.data.label_fraction, config.data.label_seed)

    def retrain_config(self) -> RunConfig:
        """The run a retrain starts: the current run's settings as asked for (its "auto" fields
        set again from the new file), or a checkpoint's, on all the file's labels."""
        source = self._source()
        run = source[3] if source is not None else None
        config = run.requested if run is not None and run.requested is not None else None
        config = config or (source[2] if source is not None else None)
        config = config if config is not None else method_config("psd", RunConfig())
        return config.replace(**{"data.label_fraction": 1.0, "threads": config.threads or 1})

    def save(self, path: str, retrain: bool = False) -> None:
        """Write the labels as a new feature file (.h5), or a manifest (.csv) of the clips;
        with ``retrain``, then open the new file and train on it."""
        data = self.base_data()
        if data is None:
            self.signals.report_error("Nothing to save", "Open a dataset first.")
            return
        kind = "manifest" if Path(path).suffix.lower() in MANIFEST_SUFFIXES else "h5"
        if kind == "manifest" and retrain:
            self.signals.report_error(
                "Cannot retrain from a manifest",
                "A manifest lists clips; extract its features (File > Open folder of clips) "
                "before training, or save a feature file (.h5) to retrain at once.",
            )
            return
        if retrain and self.runs.active_run is not None:
            self.signals.message.emit("A run is in progress: stop it before retraining.")
            return
        config = self.retrain_config() if retrain else None
        self.saveRequested.emit(SaveRequest(path, kind, data, dict(self.assignments), config))

    def saved(self, path: str, count: int) -> None:
        """A save finished (``LabelJobs`` calls it on the GUI thread)."""
        self.signals.message.emit(f"Saved {count} new labels to {path}")

    def describe(self, index: int) -> dict[str, Any]:
        """What the view shows of one candidate: its names, pseudo-label and the user's label."""
        c, row = self.catalog, self.row_of(index)
        cand = self.candidates
        predicted = int(cand.predicted[row]) if row is not None else UNLABELLED
        return {
            "name": c.item_name("train", index),
            "path": c.item_path("train", index),
            "predicted": predicted,
            "confidence": float(cand.confidence[row]) if row is not None else float("nan"),
            "assigned": self.assignments.get(int(index)),
            "hidden": int(cand.true_labels[row])
            if row is not None and cand.true_labels is not None
            else None,
        }
