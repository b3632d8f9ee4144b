"""The labelling view: the unlabelled train clips with the teacher's pseudo-labels, to review.

A table lists every candidate of ``AppState.labelling`` (the current run's unlabelled train clips)
with its thumbnail, pseudo-label, confidence, the user's label and, when a low label rate is
simulated, the hidden true label; it opens sorted by confidence, least confident first (any
column sorts by a click on its header). Beside it the current clip: a larger picture, its sound
(Play, or Space), and the keys that label it: Enter accepts the pseudo-label, a digit gives the
class it names (``digit_classes``: 1-9 and 0 for the first ten classes, or the class named by the
digit), the class list any class, Backspace takes the label back; each label moves on
to the next clip (Down/Up or N/P move too). "Save labels…" writes a new feature file or manifest,
"Save and retrain…" also opens it and starts a run. The pseudo-label accuracy of a simulated rate
is drawn per epoch under the table. Every label lives in the state; this widget only renders.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QColor, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from avexplorer.settings import save_folder, settings
from avexplorer.state.app_state import AppState
from avexplorer.widgets.audio_player import AudioPlayer
from avexplorer.widgets.dataset_panel import THUMB, ItemCells

Index = QModelIndex | QPersistentModelIndex
# Short heads (the clip names need the width on a small screen); their tooltips say them in full.
COLUMNS = ("Clip", "Pseudo-label", "Conf.", "Yours", "Hidden")
COLUMN_TIPS = (
    "The clip (its first frame and name)",
    "The teacher's pseudo-label of the latest epoch",
    "The pseudo-label's confidence (its probability)",
    "Your label for the clip",
    "The hidden true label, when a low label rate is simulated (red: the pseudo-label misses it)",
)
CONFIDENCE = 2
PICTURE = 180
SAVE_FILTERS = "Feature file (*.h5);;Manifest of clips (*.csv)"
ASSIGNED_BG = QColor(220, 240, 220)
WRONG = QColor(200, 30, 30)  # a hidden label the pseudo-label misses


def digit_classes(class_names: tuple[str, ...]) -> dict[int, int]:
    """Which class each digit key gives: the class named by the digit when the classes are
    digits (the demo's "0".."9"), else 1-9 the first nine classes and 0 the tenth."""
    by_name = {name.strip(): c for c, name in enumerate(class_names)}
    if all(str(d) in by_name for d in range(min(10, len(class_names)))):
        return {d: by_name[str(d)] for d in range(10) if str(d) in by_name}
    return {d: (d - 1) % 10 for d in range(10) if (d - 1) % 10 < len(class_names)}


def fill_class_box(box: QComboBox, class_names: tuple[str, ...], colors: Any) -> dict[int, int]:
    """List the classes in ``box``, each with its colour and its digit key, and return which
    class each digit key gives (``digit_classes``)."""
    box.clear()
    digits = digit_classes(class_names)
    key_of = {c: d for d, c in digits.items()}
    for c, name in enumerate(class_names):
        pm = QPixmap(12, 12)
        pm.fill(colors[c])
        key = f"[{key_of[c]}] " if c in key_of else ""
        box.addItem(pm, f"{key}{name}", c)
    return digits


def keyboard(
    widget: QWidget, keys: list[tuple[Any, Any]], digit: Callable[[int], None]
) -> list[QShortcut]:
    """Shortcuts for (key, slot) pairs, live while ``widget`` or a child of it has the focus;
    the 0-9 keys call ``digit`` with their digit."""
    keys = keys + [(Qt.Key.Key_0 + d, lambda d=d: digit(d)) for d in range(10)]
    shortcuts = []
    for key, slot in keys:
        sc = QShortcut(QKeySequence(key), widget)
        sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        sc.activated.connect(slot)
        shortcuts.append(sc)
    return shortcuts


class CandidatesModel(ItemCells, QAbstractTableModel):
    """One row per candidate of ``state.labelling``, in ``order`` (sorted with numpy)."""

    def __init__(self, state: AppState):
        super().__init__()
        self.state = state
        self.lab = state.labelling
        self.order = np.zeros(0, np.int64)  # candidate row shown at each table row
        self.sort_column, self.sort_order = CONFIDENCE, Qt.SortOrder.AscendingOrder

    def reset(self) -> None:
        self.beginResetModel()
        self._forget_cells()
        self.order = self._sorted(self.sort_column, self.sort_order)
        self.endResetModel()

    def _keys(self, column: int) -> np.ndarray:
        c = self.lab.candidates
        if column == 0:
            names = [self.state.catalog.item_name("train", int(i)) for i in c.indices]
            return np.argsort(np.array(names, dtype=object), kind="stable")
        if column == 1:
            return c.predicted
        if column == CONFIDENCE:
            return np.nan_to_num(c.confidence, nan=-1.0)
        if column == 3:
            a = self.lab.assignments
            return np.array([a.get(int(i), -1) for i in c.indices], np.int64)
        return c.true_labels if c.true_labels is not None else np.zeros(len(c), np.int64)

    def _sorted(self, column: int, order: Qt.SortOrder) -> np.ndarray:
        n = len(self.lab.candidates)
        if n == 0:
            return np.zeros(0, np.int64)
        keys = self._keys(column)
        # the clip column's keys are the rank order already
        idx = keys if column == 0 else np.argsort(keys, kind="stable")
        return idx[::-1].copy() if order == Qt.SortOrder.DescendingOrder else idx

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.layoutAboutToBeChanged.emit()
        self.sort_column, self.sort_order = column, order
        self.order = self._sorted(column, order)
        self.layoutChanged.emit()

    def train_index(self, row: int) -> int:
        return int(self.lab.candidates.indices[self.order[row]])

    def row_of(self, index: int) -> int | None:
        r = self.lab.row_of(index)
        if r is None:
            return None
        hits = np.flatnonzero(self.order == r)
        return int(hits[0]) if len(hits) else None

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.order)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid():
            return 0
        return len(COLUMNS) if self.lab.candidates.true_labels is not None else len(COLUMNS) - 1

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return COLUMN_TIPS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.order):
            return None
        c, st = self.lab.candidates, self.state
        r, col = int(self.order[index.row()]), index.column()
        i = int(c.indices[r])
        assigned = self.lab.assignments.get(i)
        cls = {1: int(c.predicted[r]), 3: -1 if assigned is None else assigned}
        if c.true_labels is not None:
            cls[4] = int(c.true_labels[r])
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return st.catalog.item_name("train", i)
            if col == CONFIDENCE:
                conf = float(c.confidence[r])
                return "—" if np.isnan(conf) else f"{conf:.2f}"
            if col in cls:
                return "" if cls[col] < 0 else st.catalog.class_name(cls[col])
        elif role == Qt.ItemDataRole.DecorationRole:
            if col == 0:
                return self._thumb("train", i)
            if col in cls and cls[col] >= 0:
                return self._dot(cls[col])
        elif role == Qt.ItemDataRole.BackgroundRole and assigned is not None:
            return ASSIGNED_BG
        elif role == Qt.ItemDataRole.ForegroundRole and col == 4 and 0 <= cls[1] != cls[4]:
            return WRONG
        elif role == Qt.ItemDataRole.TextAlignmentRole and col == CONFIDENCE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        elif role == Qt.ItemDataRole.UserRole:
            return i
        return None

    def refresh_cells(self) -> None:
        if len(self.order):
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self.order) - 1, self.columnCount() - 1)
            )


class LabellingView(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.lab = state.labelling
        self.player = AudioPlayer(self, state)
        self.model = CandidatesModel(state)

        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.setIconSize(QSize(THUMB * 4 // 3, THUMB))
        self.table.verticalHeader().hide()
        self.table.setSortingEnabled(True)
        self.table.horizontalHeader().setSortIndicator(CONFIDENCE, Qt.SortOrder.AscendingOrder)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._row_changed())

        self.curve_plot = pg.PlotWidget()
        self.curve_plot.setBackground("w")
        self.curve_plot.setTitle("Pseudo-label accuracy on the hidden labels", size="9pt")
        self.curve_plot.setLabel("bottom", "epoch")
        self.curve_plot.setLabel("left", "accuracy")
        self.curve_plot.setYRange(0, 1)
        self.curve_plot.setMenuEnabled(False)
        self.curve_plot.setMaximumHeight(190)
        self.curve = self.curve_plot.plot(
            pen=pg.mkPen("#d62728", width=2), symbol="o", symbolSize=6, symbolBrush="#d62728"
        )
        self.curve_plot.hide()

        # ----- the current clip ----
        self.picture = QLabel()
        self.picture.setFixedSize(PICTURE * 4 // 3, PICTURE)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setStyleSheet("background: #222; color: #aaa")
        self.name = QLabel()
        self.name.setWordWrap(True)
        self.name.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.play_button = QPushButton("▶ Play (Space)")
        self.play_button.clicked.connect(self.play)
        self.accept_button = QPushButton("Accept pseudo-label (Enter)")
        self.accept_button.clicked.connect(self.accept_current)
        self.class_box = QComboBox()
        self.class_box.setToolTip("Pick a class for the clip (or press its digit)")
        self.class_box.activated.connect(lambda _i: self._assign_picked())
        self.clear_button = QPushButton("Remove label (Backspace)")
        self.clear_button.clicked.connect(lambda: self.assign_current(-1))
        self.prev_button = QPushButton("◀ Previous (P)")
        self.prev_button.clicked.connect(lambda: self.move(-1))
        self.next_button = QPushButton("Next (N) ▶")
        self.next_button.clicked.connect(lambda: self.move(1))
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setSingleStep(0.05)
        self.threshold.setValue(0.9)
        self.threshold.setToolTip("Confidence from which 'Accept all' takes a pseudo-label")
        self.accept_all_button = QPushButton("Accept all ≥")
        self.accept_all_button.clicked.connect(self.accept_confident)
        self.save_button = QPushButton("Save labels…")
        self.save_button.setToolTip(
            "Write the labels as a new feature file (.h5) or a manifest of the clips (.csv); "
            "the open dataset is never overwritten"
        )
        self.save_button.clicked.connect(lambda: self.save_dialog(retrain=False))
        self.retrain_button = QPushButton("Save and retrain…")
        self.retrain_button.setToolTip(
            "Save a new feature file, open it and train the current run's settings on it"
        )
        self.retrain_button.clicked.connect(lambda: self.save_dialog(retrain=True))

        side = QVBoxLayout()
        side.addWidget(self.picture, 0, Qt.AlignmentFlag.AlignHCenter)
        side.addWidget(self.name)
        side.addWidget(self.detail)
        grid = QGridLayout()
        grid.addWidget(self.play_button, 0, 0, 1, 2)
        grid.addWidget(self.accept_button, 1, 0, 1, 2)
        grid.addWidget(QLabel("Class:"), 2, 0)
        grid.addWidget(self.class_box, 2, 1)
        grid.addWidget(self.clear_button, 3, 0, 1, 2)
        grid.addWidget(self.prev_button, 4, 0)
        grid.addWidget(self.next_button, 4, 1)
        grid.addWidget(self.accept_all_button, 5, 0)
        grid.addWidget(self.threshold, 5, 1)
        side.addLayout(grid)
        side.addWidget(self.status)
        side.addStretch(1)
        saves = QHBoxLayout()
        saves.addWidget(self.save_button)
        saves.addWidget(self.retrain_button)
        side.addLayout(saves)
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_widget.setMaximumWidth(PICTURE * 4 // 3 + 80)

        left = QWidget()
        lbox = QVBoxLayout(left)
        lbox.setContentsMargins(0, 0, 0, 0)
        lbox.addWidget(self.summary)
        lbox.addWidget(self.table, 1)
        lbox.addWidget(self.curve_plot)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(side_widget)
        split.setStretchFactor(0, 1)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.addWidget(split)

        self.digits: dict[int, int] = {}  # digit key -> class id
        self._shown_epoch: int | None = None  # the pseudo-labels the table shows
        self._shown_run: int | None = None
        self._reviewing = False  # the user has moved or labelled since these candidates came
        self._placing = False  # the view itself is moving the cursor
        self._shortcuts()
        self.lab.candidatesChanged.connect(self._candidates_changed)
        self.lab.assignmentsChanged.connect(self._assignments_changed)
        state.signals.datasetChanged.connect(self._dataset_changed)
        state.signals.thumbnailsChanged.connect(self._thumbnails_changed)
        state.signals.epochAdded.connect(lambda _rid, _e: self._draw_curve())
        state.signals.currentRunChanged.connect(lambda _rid: self._draw_curve())
        self._dataset_changed()

    def _shortcuts(self) -> None:
        self._keys = keyboard(
            self,
            [
                (Qt.Key.Key_Return, self.accept_current),
                (Qt.Key.Key_Enter, self.accept_current),
                (Qt.Key.Key_Backspace, lambda: self.assign_current(-1)),
                (Qt.Key.Key_Delete, lambda: self.assign_current(-1)),
                (Qt.Key.Key_Space, self.play),
                (Qt.Key.Key_N, lambda: self.move(1)),
                (Qt.Key.Key_P, lambda: self.move(-1)),
            ],
            digit=self._digit,
        )

    # ----- rendering ---------------------------------------------------------------------------
    def _dataset_changed(self) -> None:
        data = self.state.catalog.dataset
        names = data.class_names if data is not None else ()
        self.digits = fill_class_box(self.class_box, names, self.state.catalog.colors)

    def _candidates_changed(self) -> None:
        # The clip under review stays current when newer pseudo-labels come. Until the user
        # reviews (moves, labels or clicks a clip), each epoch's pseudo-labels start at the top
        # of the new order, the least confident clip: keeping epoch 1's first clip left the
        # table opened at the middle of its list after a run.
        if self._shown_run != self.lab.run_id:
            self._reviewing = False
        keep = self.current_index() if self._reviewing else None
        self._shown_epoch, self._shown_run = self.lab.candidates.epoch, self.lab.run_id
        self.model.reset()
        self._fit_columns()
        self._summarise()
        row = self.model.row_of(keep) if keep is not None else None
        if row is None and self.model.rowCount():
            row = 0
        if row is not None:
            self._go_to(row)
        self._show_current()
        self._draw_curve()

    def _fit_columns(self) -> None:
        """The columns after the clip's as wide as their heads (and a colour dot or the sort
        arrow), so that the clip names keep the rest on a small screen (a reset of the model
        gives every column the default width again)."""
        header = self.table.horizontalHeader()
        for column in range(1, self.model.columnCount()):
            header.resizeSection(
                column, self.table.fontMetrics().horizontalAdvance(COLUMNS[column]) + 30
            )

    def _go_to(self, row: int) -> None:
        """Make ``row`` current and scroll it into view (by the view, not the user)."""
        self._placing = True
        self.table.selectRow(row)
        self.table.scrollTo(self.model.index(row, 0))
        self._placing = False

    def _row_changed(self) -> None:
        if not self._placing:  # a click or a key in the table: the user is reviewing
            self._reviewing = True
        self._show_current()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        # A table filled while hidden has no height to scroll in: place it now it is seen.
        row = self.table.currentIndex().row()
        if row >= 0:
            self.table.scrollTo(self.model.index(row, 0))

    def _assignments_changed(self) -> None:
        self.model.refresh_cells()
        self._summarise()
        self._show_current()

    def _thumbnails_changed(self) -> None:
        self.table.verticalHeader().setDefaultSectionSize(THUMB + 4)
        self.model.refresh_cells()
        self._show_current()

    def _summarise(self) -> None:
        c, st = self.lab.candidates, self.state
        if st.catalog.dataset is None:
            self.summary.setText("Open a dataset to label its clips.")
            return
        n_assigned = len(self.lab.assignments)
        if not len(c):
            self.summary.setText(
                "Every train clip of this dataset has a label. To review pseudo-labels, train "
                "with a label fraction below 1 (Training tab: Label fraction, on the run form), or "
                "open a file with unlabelled clips."
            )
            return
        text = f"<b>{len(c)}</b> unlabelled train clips, <b>{n_assigned}</b> labelled by you. "
        if c.epoch is not None and self.lab.run_id is not None:
            text += f"Pseudo-labels of {self.lab.source_name}'s {c.source}, epoch {c.epoch}"
            if c.accuracy is not None:
                text += f" ({c.accuracy:.1%} right on the hidden labels)"
            text += "."
        elif self.lab.note:
            text += escape(self.lab.note)
        else:
            text += (
                "Train a run (psd or triplet) or load a checkpoint to get the teacher's "
                "pseudo-labels."
            )
        self.summary.setText(text)

    def _draw_curve(self) -> None:
        x, y = self.lab.accuracy_curve()
        self.curve.setData(x, y)
        self.curve_plot.setVisible(len(x) > 0)

    def current_index(self) -> int | None:
        """The train position of the clip the table's cursor is on."""
        idx = self.table.currentIndex()
        if not idx.isValid() or idx.row() >= self.model.rowCount():
            return None
        return self.model.train_index(idx.row())

    def _show_current(self) -> None:
        i = self.current_index()
        enabled = i is not None
        for w in (self.play_button, self.accept_button, self.class_box, self.clear_button):
            w.setEnabled(enabled)
        if i is None:
            self.picture.clear()
            self.picture.setText("no clip")
            self.name.clear()
            self.detail.clear()
            return
        d = self.lab.describe(i)
        st = self.state
        image = st.catalog.thumbnails.get(d["path"]) if d["path"] else None
        if image is not None:
            self.picture.setPixmap(
                QPixmap.fromImage(image).scaled(
                    self.picture.size(),
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )
        else:
            self.picture.clear()
            self.picture.setText("no picture" if d["path"] else "features only")
        self.name.setText(f"<b>{d['name']}</b> (train #{i})")
        lines = []
        if d["predicted"] >= 0:
            predicted = st.catalog.class_name(d["predicted"])
            lines.append(f"Pseudo-label: <b>{predicted}</b> ({d['confidence']:.2f})")
        else:
            lines.append("Pseudo-label: none" + (" (see above)" if self.lab.note else " yet"))
        yours = d["assigned"]
        lines.append(
            f"Your label: <b>{st.catalog.class_name(yours)}</b>" if yours is not None else ""
        )
        if d["hidden"] is not None and d["hidden"] >= 0:
            lines.append(f"Hidden label: {st.catalog.class_name(d['hidden'])}")
        self.detail.setText("<br>".join(x for x in lines if x))
        chosen = yours if yours is not None else d["predicted"]
        if chosen is not None and chosen >= 0:
            self.class_box.setCurrentIndex(chosen)

    # ----- intents -----------------------------------------------------------------------------
    def move(self, step: int) -> None:
        n = self.model.rowCount()
        if not n:
            return
        row = self.table.currentIndex().row()
        row = min(max(row + step, 0), n - 1) if row >= 0 else 0
        self.table.selectRow(row)
        self.table.scrollTo(self.model.index(row, 0))

    def assign_current(self, class_id: int) -> None:
        i = self.current_index()
        if i is None:
            return
        self._reviewing = True
        self.lab.assign(i, class_id)
        if class_id >= 0 and self.lab.assignments.get(i) == class_id:
            self.move(1)

    def _digit(self, d: int) -> None:
        if d in self.digits:
            self.assign_current(self.digits[d])
        else:
            self.status.setText(f"No class has the key {d}: pick it from the class list.")

    def _assign_picked(self) -> None:
        c = self.class_box.currentData()
        if isinstance(c, int):
            self.assign_current(c)

    def accept_current(self) -> None:
        i = self.current_index()
        if i is None:
            return
        self._reviewing = True
        self.lab.accept(i)
        if i in self.lab.assignments:
            self.move(1)

    def accept_confident(self) -> None:
        n = self.lab.accept_confident(self.threshold.value())
        self.status.setText(f"Accepted {n} pseudo-labels at confidence ≥ {self.threshold.value()}")

    def play(self) -> None:
        i = self.current_index()
        if i is not None:
            self.status.setText(self.player.play(self.state.catalog.item_path("train", i)))

    def save_dialog(self, retrain: bool = False) -> None:
        data = self.state.catalog.dataset
        if data is None:
            return
        from pathlib import Path

        # Never the installed package's folder (the demo's) or a read-only one.
        folder = save_folder("data", data.source)
        stem = Path(data.source).stem or "dataset"
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Save and retrain on" if retrain else "Save labels",
            str(Path(folder) / f"{stem}-labelled.h5"),
            "Feature file (*.h5)" if retrain else SAVE_FILTERS,
        )
        if path:
            settings().setValue("paths/data", str(Path(path).parent))
            self.lab.save(path, retrain=retrain)

    def plots(self) -> dict[str, QWidget]:
        return {"Pseudo-label accuracy": self.curve_plot}
