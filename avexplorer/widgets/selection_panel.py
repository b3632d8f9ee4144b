"""Selection view: what the current selection holds, and what to do with it.

Shows the state's selection: its items per class and modality, the mean cosine between its items
(beside the whole test set's, for scale), and the audio-visual pairs it splits. It sends intents:
query with the selection's mean audio (A2V) or visual (V2A) embedding, export it (clip list,
embeddings, or a feature file of its pairs; written in the background), save it under a name with
the dataset and load a saved one, clear it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from avexplorer.settings import settings
from avexplorer.state.app_state import AppState
from avexplorer.widgets.flow_row import FlowRow
from core.exploration.selection import Selection, Summary, summary

EXPORT_FILTERS = {
    "csv": ("Clip list (CSV)…", "selection.csv", "CSV (*.csv)"),
    "npz": ("Embeddings (NPZ)…", "selection.npz", "NPZ (*.npz)"),
    "h5": ("Feature file of its pairs (H5)…", "selection.h5", "Feature files (*.h5 *.hdf5)"),
}
HINT = (
    "No selection. Draw with the Lasso or Box on the map (Shift adds, Ctrl subtracts, Esc "
    "clears), click a class in the map's legend, or select several rows in the table."
)


class SelectionPanel(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.headline = QLabel(HINT)
        self.headline.setWordWrap(True)
        self.similarity = QLabel()
        self.similarity.setWordWrap(True)
        self.similarity.setToolTip(
            "Mean cosine similarity over every two selected items (audio and visual together)"
        )
        self.split = QLabel()
        self.split.setWordWrap(True)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Class", "Audio", "Visual"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

        self.query_audio = QPushButton("Audio mean → A2V")
        self.query_audio.setToolTip("A2V: the mean of the selected audio embeddings as the query")
        self.query_audio.clicked.connect(lambda: state.selection.query_with_selection("audio"))
        self.query_visual = QPushButton("Visual mean → V2A")
        self.query_visual.setToolTip("V2A: the mean of the selected visual embeddings")
        self.query_visual.clicked.connect(lambda: state.selection.query_with_selection("visual"))

        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        for kind, (text, _name, _filter) in EXPORT_FILTERS.items():
            menu.addAction(text, lambda k=kind: self.export_dialog(k))
        self.export_button.setMenu(menu)
        self.save_button = QPushButton("Save as…")
        self.save_button.setToolTip("Keep this selection under a name, with the dataset")
        self.save_button.clicked.connect(self.save_dialog)
        self.saved = QComboBox()
        self.saved.setToolTip("Selections saved with this dataset")
        self.load_button = QPushButton("Load")
        self.load_button.clicked.connect(self._load)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(state.selection.clear_selection)

        queries = QWidget()  # side by side, or one above the other in a narrow dock
        flow = FlowRow(queries)
        flow.addWidget(self.query_audio)
        flow.addWidget(self.query_visual)
        actions = QGridLayout()
        actions.addWidget(self.export_button, 0, 0)
        actions.addWidget(self.save_button, 0, 1)
        actions.addWidget(self.clear_button, 0, 2)
        actions.addWidget(self.saved, 1, 0, 1, 2)
        actions.addWidget(self.load_button, 1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.headline)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.similarity)
        layout.addWidget(self.split)
        layout.addWidget(queries)
        layout.addLayout(actions)

        self.summary: Summary | None = None
        self._baseline: tuple[object, float | None] | None = None  # (the gallery, its mean)
        # The counts and the similarity follow a lasso on the next turn of the event loop: the
        # map greys first, and a burst of changes costs one refresh.
        self._pending = QTimer(self)
        self._pending.setSingleShot(True)
        self._pending.setInterval(0)
        self._pending.timeout.connect(self.refresh)
        state.signals.selectionChanged.connect(self._pending.start)
        state.signals.modelChanged.connect(self._pending.start)
        state.signals.datasetChanged.connect(self._dataset_changed)
        self.refresh()

    # ----- display -----------------------------------------------------------------------------
    def resizeEvent(self, event) -> None:
        # A wrapped hint in a narrow dock needs more lines than its layout asks for: reserve
        # them (else the dock cut its last lines off).
        super().resizeEvent(event)
        self._fit_headline()

    def _fit_headline(self) -> None:
        self.headline.setMinimumHeight(max(0, self.headline.heightForWidth(self.headline.width())))

    def _dataset_changed(self) -> None:
        self.refresh_saved()
        self.refresh()

    def refresh_saved(self) -> None:
        self.saved.clear()
        self.saved.addItems(self.state.selection.saved_selections())
        self.load_button.setEnabled(self.saved.count() > 0)

    def refresh(self) -> None:
        s, sel, data = self.state, self.state.selection.current, self.state.catalog.dataset
        has = sel is not None and data is not None
        for w in (self.export_button, self.save_button, self.clear_button):
            w.setEnabled(has)
        g = (
            s.retrieval.gallery
            if has
            and s.retrieval.gallery is not None
            and len(s.retrieval.gallery.audio) == len(sel)
            else None
        )
        self.query_audio.setEnabled(g is not None and bool(sel.audio.any()))
        self.query_visual.setEnabled(g is not None and bool(sel.visual.any()))
        if not has:
            self.summary = None
            self.headline.setText(HINT)
            self._fit_headline()
            self.table.setRowCount(0)
            self.similarity.setText("")
            self.split.setText("")
            return
        labels = data.test.labels
        sm = summary(sel, labels, data.num_classes, *((g.audio, g.visual) if g else (None, None)))
        self.summary = sm
        clips = len(sel.clips())
        self.headline.setText(
            f"<b>{sel.count} selected</b>: {sm.audio} audio, {sm.visual} visual, "
            f"from {clips} of {len(labels)} test clips"
        )
        self._fit_headline()
        rows = [c for c in np.argsort(-(sm.audio_per_class + sm.visual_per_class), kind="stable")]
        rows = [int(c) for c in rows if sm.audio_per_class[c] + sm.visual_per_class[c] > 0]
        self.table.setRowCount(len(rows))
        for r, c in enumerate(rows):
            name = QTableWidgetItem(s.catalog.class_name(c))
            dot = QPixmap(12, 12)
            dot.fill(s.catalog.colors[c])
            name.setIcon(dot)
            self.table.setItem(r, 0, name)
            self.table.setItem(r, 1, QTableWidgetItem(str(int(sm.audio_per_class[c]))))
            self.table.setItem(r, 2, QTableWidgetItem(str(int(sm.visual_per_class[c]))))
        if sm.mean_similarity is None:
            self.similarity.setText(
                "Mean cosine within the selection: — (needs a model and two items)"
            )
        else:
            base = self._whole_set_similarity()
            self.similarity.setText(
                f"Mean cosine within the selection: <b>{sm.mean_similarity:.3f}</b>"
                + (f" (whole test set: {base:.3f})" if base is not None else "")
            )
        k = len(sm.split_pairs)
        names = ", ".join(s.catalog.item_name("test", int(i)) for i in sm.split_pairs[:8])
        self.split.setText(
            "No pair is split: each clip is in with both sides or not at all."
            if k == 0
            else f"{k} pairs split: {sm.audio_only} with only the audio in, "
            f"{k - sm.audio_only} with only the visual in"
        )
        self.split.setToolTip(names + (" …" if k > 8 else "") if k else "")

    def _whole_set_similarity(self) -> float | None:
        """The mean cosine over the whole test set (once per gallery), for scale."""
        g = self.state.retrieval.gallery
        if g is None:
            return None
        if self._baseline is None or self._baseline[0] is not g:
            everything = Selection(np.ones(len(g.audio), bool), np.ones(len(g.visual), bool))
            labels = np.zeros(len(g.audio), np.int64)
            self._baseline = (g, summary(everything, labels, 1, g.audio, g.visual).mean_similarity)
        return self._baseline[1]

    # ----- intents -----------------------------------------------------------------------------
    def export_dialog(self, kind: str) -> None:
        _text, name, filt = EXPORT_FILTERS[kind]
        folder = str(settings().value("paths/exports", str(Path.home())))
        path, _ = QFileDialog.getSaveFileName(
            self, "Export the selection", str(Path(folder) / name), filt
        )
        if path:
            settings().setValue("paths/exports", str(Path(path).parent))
            self.state.selection.export_selection(kind, path)

    def save_dialog(self) -> None:
        name, ok = QInputDialog.getText(self, "Save selection", "Name:")
        if ok and name.strip():
            self.state.selection.save_selection(name)
            self.refresh_saved()
            self.saved.setCurrentText(name.strip())

    def _load(self) -> None:
        if self.saved.currentText():
            self.state.selection.load_selection(self.saved.currentText())
