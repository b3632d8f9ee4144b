"""The Data issues view: the train pairs whose label looks wrong and those whose sound does not
belong to their picture, ranked, with the fixes the user accepts.

"Audit train pairs" asks ``AppState.audit`` for an audit (``core.exploration.audit``, in a worker
with progress and cancel). The table lists the flagged pairs, label issues then mismatched pairs,
most suspect first (a click on a header sorts by that column), each with its first frame, its given
and suggested class, its score and the fix chosen. Beside it the current pair: its picture, what
the sound and the picture each say, Play (Space) for its sound and Open clip (O) for the whole
clip. Keys fix it and move on: Enter the suggested fix (a label issue takes the suggested class, a
mismatched pair is dropped), a digit relabels to the class it names, U marks it unlabelled, D drops
it, Backspace undoes; N/P (or Down/Up) move. "Save cleaned copy…" writes a new feature file (never
over the open one, clip paths kept), "Save and retrain…" also opens it and starts a run. Every fix
lives in the state; this widget only renders and sends intents.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    Qt,
    QUrl,
)
from PySide6.QtGui import QColor, QDesktopServices, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
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
from avexplorer.state.audit import DROP, LABEL, RELABEL, UNLABEL, Suspect
from avexplorer.widgets.audio_player import AudioPlayer
from avexplorer.widgets.dataset_panel import THUMB, ItemCells
from avexplorer.widgets.labelling_view import fill_class_box, keyboard

Index = QModelIndex | QPersistentModelIndex
COLUMNS = ("Clip", "Issue", "Given", "Suggested", "Score", "Fix")
ISSUE, SCORE = 1, 4
PICTURE = 180
FIXED_BG = QColor(220, 240, 220)
DROPPED_FG = QColor(150, 150, 150)
KINDS = {LABEL: "label", "mismatch": "sound ≠ picture"}
SHOW = (("All issues", None), ("Label issues", LABEL), ("Mismatched pairs", "mismatch"))


class SuspectsModel(ItemCells, QAbstractTableModel):
    """One row per suspect of ``state.audit`` of the chosen kind, in ``order``."""

    def __init__(self, state: AppState):
        super().__init__()
        self.state = state
        self.audit = state.audit
        self.kind: str | None = None
        self.rows: list[Suspect] = []
        self.sort_column, self.sort_order = -1, Qt.SortOrder.AscendingOrder

    def reset(self) -> None:
        self.beginResetModel()
        self._forget_cells()
        self.rows = [s for s in self.audit.suspects if self.kind in (None, s.kind)]
        if self.sort_column >= 0:
            self.rows = self._sorted(self.rows, self.sort_column, self.sort_order)
        self.endResetModel()

    def _sorted(self, rows: list[Suspect], column: int, order: Qt.SortOrder) -> list[Suspect]:
        def key(s: Suspect) -> Any:
            if column == 0:
                return self.audit.name(s.row)
            if column == ISSUE:
                return (s.kind != LABEL, s.rank)
            if column == 2:
                return s.given
            if column == 3:
                return s.suggested
            if column == SCORE:
                return s.score
            fix = self.audit.fixes.get(s.row)
            return fix.action if fix is not None else ""

        return sorted(rows, key=key, reverse=order == Qt.SortOrder.DescendingOrder)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.layoutAboutToBeChanged.emit()
        self.sort_column, self.sort_order = column, order
        self.rows = self._sorted(self.rows, column, order)
        self.layoutChanged.emit()

    def suspect(self, row: int) -> Suspect:
        return self.rows[row]

    def row_of(self, suspect: Suspect) -> int | None:
        return next((r for r, s in enumerate(self.rows) if s == suspect), None)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        s, col, st = self.rows[index.row()], index.column(), self.state
        fix = self.audit.fixes.get(s.row)
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return self.audit.name(s.row)
            if col == ISSUE:
                return KINDS[s.kind]
            if col == 2:
                return st.catalog.class_name(s.given)
            if col == 3:
                return st.catalog.class_name(s.suggested) if s.kind == LABEL else ""
            if col == SCORE:
                return f"{s.score:.2f}"
            if col == 5:
                return describe_fix(st, fix)
        elif role == Qt.ItemDataRole.DecorationRole:
            if col == 0:
                return self._thumb(*self.audit.location(s.row))
            if col == 2:
                return self._dot(s.given)
            if col == 3 and s.kind == LABEL:
                return self._dot(s.suggested)
        elif role == Qt.ItemDataRole.BackgroundRole and fix is not None:
            return FIXED_BG
        elif role == Qt.ItemDataRole.ForegroundRole and fix is not None and fix.action == DROP:
            return DROPPED_FG
        elif role == Qt.ItemDataRole.TextAlignmentRole and col == SCORE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def refresh_cells(self) -> None:
        if self.rows:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self.rows) - 1, len(COLUMNS) - 1)
            )


def describe_fix(state: AppState, fix: Any) -> str:
    if fix is None:
        return ""
    if fix.action == RELABEL:
        return f"→ {state.catalog.class_name(fix.class_id)}"
    return "unlabelled" if fix.action == UNLABEL else "dropped"


class DataIssuesView(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.audit = state.audit
        self.player = AudioPlayer(self, state)
        self.model = SuspectsModel(state)

        self.audit_button = QPushButton("Audit train pairs")
        self.audit_button.setToolTip(
            "Score every labelled train pair with models that did not see it: is its label "
            "wrong, does its sound belong to its picture? (docs/audit.md)"
        )
        self.audit_button.clicked.connect(self.audit.request_audit)
        self.show_box = QComboBox()
        for text, kind in SHOW:
            self.show_box.addItem(text, kind)
        self.show_box.currentIndexChanged.connect(lambda _i: self._filter())
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.setIconSize(QSize(THUMB * 4 // 3, THUMB))
        self.table.verticalHeader().hide()
        self.table.setSortingEnabled(True)
        # the audit's order: label issues then mismatched pairs, each most suspect first
        self.table.horizontalHeader().setSortIndicator(ISSUE, Qt.SortOrder.AscendingOrder)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._show_current())

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
        self.play_button = QPushButton("▶ Sound (Space)")
        self.play_button.clicked.connect(self.play)
        self.open_button = QPushButton("Open clip (O)")
        self.open_button.setToolTip("Open the clip (picture and sound) in the system's player")
        self.open_button.clicked.connect(self.open_clip)
        self.accept_button = QPushButton("Accept suggestion (Enter)")
        self.accept_button.clicked.connect(self.accept_current)
        self.class_box = QComboBox()
        self.class_box.setToolTip("Relabel the pair to a class (or press its digit)")
        self.class_box.activated.connect(lambda _i: self._relabel_picked())
        self.unlabel_button = QPushButton("Mark unlabelled (U)")
        self.unlabel_button.clicked.connect(lambda: self._fix(self.audit.unlabel))
        self.drop_button = QPushButton("Drop pair (D)")
        self.drop_button.clicked.connect(lambda: self._fix(self.audit.drop))
        self.undo_button = QPushButton("Undo fix (Backspace)")
        self.undo_button.clicked.connect(self.undo_current)
        self.prev_button = QPushButton("◀ Previous (P)")
        self.prev_button.clicked.connect(lambda: self.move(-1))
        self.next_button = QPushButton("Next (N) ▶")
        self.next_button.clicked.connect(lambda: self.move(1))
        self.save_button = QPushButton("Save cleaned copy…")
        self.save_button.setToolTip(
            "Write a new feature file with the fixes; the open dataset is never overwritten"
        )
        self.save_button.clicked.connect(lambda: self.save_dialog(retrain=False))
        self.retrain_button = QPushButton("Save and retrain…")
        self.retrain_button.setToolTip("Save the cleaned copy, open it and train on it")
        self.retrain_button.clicked.connect(lambda: self.save_dialog(retrain=True))

        side = QVBoxLayout()
        side.addWidget(self.picture, 0, Qt.AlignmentFlag.AlignHCenter)
        side.addWidget(self.name)
        side.addWidget(self.detail)
        grid = QGridLayout()
        grid.addWidget(self.play_button, 0, 0)
        grid.addWidget(self.open_button, 0, 1)
        grid.addWidget(self.accept_button, 1, 0, 1, 2)
        grid.addWidget(QLabel("Relabel:"), 2, 0)
        grid.addWidget(self.class_box, 2, 1)
        grid.addWidget(self.unlabel_button, 3, 0)
        grid.addWidget(self.drop_button, 3, 1)
        grid.addWidget(self.undo_button, 4, 0, 1, 2)
        grid.addWidget(self.prev_button, 5, 0)
        grid.addWidget(self.next_button, 5, 1)
        side.addLayout(grid)
        side.addWidget(self.status)
        side.addStretch(1)
        saves = QHBoxLayout()
        saves.addWidget(self.save_button)
        saves.addWidget(self.retrain_button)
        side.addLayout(saves)
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_widget.setMaximumWidth(PICTURE * 4 // 3 + 100)

        bar = QHBoxLayout()
        bar.addWidget(self.audit_button)
        bar.addWidget(QLabel("Show:"))
        bar.addWidget(self.show_box)
        bar.addStretch(1)
        left = QWidget()
        lbox = QVBoxLayout(left)
        lbox.setContentsMargins(0, 0, 0, 0)
        lbox.addLayout(bar)
        lbox.addWidget(self.summary)
        lbox.addWidget(self.table, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(side_widget)
        split.setStretchFactor(0, 1)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.addWidget(split)

        self.digits: dict[int, int] = {}
        self._shortcuts()
        self.audit.auditChanged.connect(self._audit_changed)
        self.audit.fixesChanged.connect(self._fixes_changed)
        state.signals.datasetChanged.connect(self._dataset_changed)
        state.signals.thumbnailsChanged.connect(self._thumbnails_changed)
        self._dataset_changed()
        self._audit_changed()

    def _shortcuts(self) -> None:
        self._keys = keyboard(
            self,
            [
                (Qt.Key.Key_Return, self.accept_current),
                (Qt.Key.Key_Enter, self.accept_current),
                (Qt.Key.Key_U, lambda: self._fix(self.audit.unlabel)),
                (Qt.Key.Key_D, lambda: self._fix(self.audit.drop)),
                (Qt.Key.Key_Backspace, self.undo_current),
                (Qt.Key.Key_Space, self.play),
                (Qt.Key.Key_O, self.open_clip),
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

    def _filter(self) -> None:
        self.model.kind = self.show_box.currentData()
        self._audit_changed()

    def _audit_changed(self) -> None:
        keep = self.current()
        self.model.reset()
        self._summarise()
        row = self.model.row_of(keep) if keep is not None else None
        if row is None and self.model.rowCount():
            row = 0
        if row is not None:
            self.table.selectRow(row)
            self.table.scrollTo(self.model.index(row, 0))
        self._show_current()

    def _fixes_changed(self) -> None:
        self.model.refresh_cells()
        self._summarise()
        self._show_current()

    def _thumbnails_changed(self) -> None:
        self.table.verticalHeader().setDefaultSectionSize(THUMB + 4)
        self.model.refresh_cells()
        self._show_current()

    def _summarise(self) -> None:
        a, st = self.audit, self.state
        self.audit_button.setEnabled(st.catalog.dataset is not None and not a.computing)
        for w in (self.save_button, self.retrain_button):
            w.setEnabled(bool(a.fixes))
        if st.catalog.dataset is None:
            self.summary.setText("Open a dataset to audit its train pairs.")
        elif a.computing:
            self.summary.setText("Auditing the train pairs… (progress in the status bar)")
        elif a.audit is None:
            why = f" (last try: {a.note})" if a.note else ""
            self.summary.setText(
                "Find the train pairs whose label looks wrong and those whose sound does not "
                f"belong to the picture: press <b>Audit train pairs</b>{why}."
            )
        else:
            n_label = sum(s.kind == LABEL for s in a.suspects)
            drops = sum(f.action == DROP for f in a.fixes.values())
            self.summary.setText(
                f"<b>{len(a.audit.rows)}</b> labelled train pairs audited: <b>{n_label}</b> "
                f"label issues, <b>{len(a.suspects) - n_label}</b> mismatched pairs. "
                f"Fixes: {len(a.fixes) - drops} relabelled or unlabelled, {drops} dropped."
            )

    def current(self) -> Suspect | None:
        idx = self.table.currentIndex()
        if not idx.isValid() or idx.row() >= self.model.rowCount():
            return None
        return self.model.suspect(idx.row())

    def _show_current(self) -> None:
        s = self.current()
        for w in (
            self.play_button,
            self.open_button,
            self.accept_button,
            self.class_box,
            self.unlabel_button,
            self.drop_button,
            self.undo_button,
        ):
            w.setEnabled(s is not None)
        if s is None:
            self.picture.clear()
            self.picture.setText("no pair")
            self.name.clear()
            self.detail.clear()
            return
        st, a = self.state, self.audit
        path = a.path(s.row)
        image = st.catalog.thumbnails.get(path) if path else None
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
            self.picture.setText("no picture" if path else "features only")
        split, pos = a.location(s.row)
        self.name.setText(f"<b>{a.name(s.row)}</b> (train row {s.row}; {split} #{pos})")
        lines = [f"Given label: <b>{st.catalog.class_name(s.given)}</b>"]
        if s.kind == LABEL:
            lines.append(
                f"Likely class: <b>{st.catalog.class_name(s.suggested)}</b> (score {s.score:.2f})"
            )
        else:
            lines.append(
                f"Sound and picture do not find each other: {s.score:.0%} of other clips sit closer"
            )
        said = self._halves(s.row)
        if said:
            lines.append(said)
        fix = a.fixes.get(s.row)
        if fix is not None:
            lines.append(f"Fix: <b>{describe_fix(st, fix)}</b>")
        self.detail.setText("<br>".join(lines))
        chosen = fix.class_id if fix is not None and fix.action == RELABEL else s.suggested
        if 0 <= chosen < self.class_box.count():
            self.class_box.setCurrentIndex(chosen)

    def _halves(self, row: int) -> str:
        """What the sound and the picture each say (their out-of-fold class beliefs)."""
        audit = self.audit.audit
        if audit is None:
            return ""
        at = np.flatnonzero(audit.rows == row)
        if not len(at):
            return ""
        pa, pv = audit.audio_probs[at[0]], audit.visual_probs[at[0]]
        name = self.state.catalog.class_name
        return (
            f"Sound says {name(int(pa.argmax()))} ({pa.max():.2f}), "
            f"picture says {name(int(pv.argmax()))} ({pv.max():.2f})"
        )

    # ----- intents -----------------------------------------------------------------------------
    def move(self, step: int) -> None:
        n = self.model.rowCount()
        if not n:
            return
        row = self.table.currentIndex().row()
        row = min(max(row + step, 0), n - 1) if row >= 0 else 0
        self.table.selectRow(row)
        self.table.scrollTo(self.model.index(row, 0))

    def _fix(self, action) -> None:
        s = self.current()
        if s is None:
            return
        action(s.row)
        self.move(1)

    def accept_current(self) -> None:
        s = self.current()
        if s is None:
            return
        self.audit.accept(s)
        self.move(1)

    def undo_current(self) -> None:
        s = self.current()
        if s is not None:
            self.audit.undo(s.row)

    def _digit(self, d: int) -> None:
        if d in self.digits:
            self._fix(lambda row: self.audit.relabel(row, self.digits[d]))
        else:
            self.status.setText(f"No class has the key {d}: pick it from the list.")

    def _relabel_picked(self) -> None:
        c = self.class_box.currentData()
        if isinstance(c, int):
            self._fix(lambda row: self.audit.relabel(row, c))

    def play(self) -> None:
        s = self.current()
        if s is not None:
            self.status.setText(self.player.play(self.audit.path(s.row)))

    def open_clip(self) -> None:
        s = self.current()
        path = self.audit.path(s.row) if s is not None else None
        if path is None or not Path(path).exists():
            self.status.setText("No clip file for this pair (features only, or not built yet).")
            return
        QDesktopServices.openUrl(QUrl.fromLocalFile(path))

    def save_dialog(self, retrain: bool = False) -> None:
        data = self.state.catalog.dataset
        if data is None:
            return
        # Never the installed package's folder (the demo's) or a read-only one.
        folder = save_folder("data", data.source)
        stem = Path(data.source).stem or "dataset"
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Save and retrain on" if retrain else "Save cleaned copy",
            str(Path(folder) / f"{stem}-cleaned.h5"),
            "Feature file (*.h5)",
        )
        if path:
            settings().setValue("paths/data", str(Path(path).parent))
            self.audit.save(path, retrain=retrain)
