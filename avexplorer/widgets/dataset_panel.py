"""Dataset panel: where the data comes from, and a filterable table of its items.

Train clips without a label (label -1) read "unlabelled" in grey italics; the class list filters
to labelled or unlabelled items too (``LABELLED`` / ``UNLABELLED_ONLY``).

Selecting several rows (Ctrl- or Shift-click) makes their test clips the state's selection; a
selection made anywhere filters the table to its clips ("Selection only").

The table is a model/view pair rather than a QTableWidget so that 100k items cost one Python
object per column lookup on screen, not one widget per cell. The filter is a proxy whose rows are
a numpy array of the model's (class, text and selection masks computed at once): a
``QSortFilterProxyModel`` would call a Python ``filterAcceptsRow`` per row, seconds at 100k.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractProxyModel,
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from avexplorer.state.app_state import AppState

Index = QModelIndex | QPersistentModelIndex
COLUMNS = ("Clip", "Class", "Split", "Length")
LENGTH = COLUMNS.index("Length")
WIDE_TABLE = 300  # px: the panel's width from which the length column shows
THUMB = 28  # thumbnail height in the table: small enough to leave the clip name readable
LABELLED, UNLABELLED_ONLY = -2, -3  # class-list filters beside "all" (-1) and the class ids
UNLABELLED_GREY = QColor(150, 150, 150)


class ItemCells:
    """A table model's cached cell pictures: an item's first frame and its class's swatch (the
    labelling view's table shares them). Needs ``state``."""

    state: AppState

    def _thumb(self, split: str, i: int) -> QPixmap | None:
        """The clip's first frame once decoded; None (no icon) for features-only data."""
        path = self.state.catalog.item_path(split, i)
        image = self.state.catalog.thumbnails.get(path) if path else None
        if image is None:
            return None
        pixmaps = self.__dict__.setdefault("_pixmaps", {})
        pm = pixmaps.get(path)
        if pm is None:
            pm = QPixmap.fromImage(image).scaled(
                THUMB,
                THUMB,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
            pixmaps[path] = pm
        return pm

    def _dot(self, label: int) -> QPixmap:
        """A small swatch in the class colour (grey: unlabelled), shared by the class's rows."""
        swatches = self.__dict__.setdefault("_swatches", {})
        pm = swatches.get(label)
        if pm is None:
            pm = QPixmap(12, 12)
            pm.fill(self.state.catalog.colors[label] if label >= 0 else UNLABELLED_GREY)
            swatches[label] = pm
        return pm

    def _forget_cells(self) -> None:
        """Another dataset (or new colours): the cached pictures are stale."""
        self.__dict__.pop("_pixmaps", None)
        self.__dict__.pop("_swatches", None)


class ItemsModel(ItemCells, QAbstractTableModel):
    def __init__(self, state: AppState):
        super().__init__()
        self.state = state
        self.rows: list[tuple[str, int]] = []  # every item, in table order
        self._labels = np.zeros(0, np.int64)  # per item of ``all_rows``
        self._test = np.zeros(0, np.int64)  # test index per item, -1 for train and val
        self._hay: list[str] | None = None  # lower-case text per item, built on first search

    def reset(self) -> None:
        self.beginResetModel()
        self.rows = self.state.catalog.items()
        data = self.state.catalog.dataset
        splits = [data.split(s) for s in ("train", "val", "test")] if data is not None else []
        self._labels = np.concatenate([s.labels for s in splits] or [np.zeros(0, np.int64)])
        n_test = len(data.test) if data is not None else 0
        self._test = np.r_[np.full(len(self.rows) - n_test, -1), np.arange(n_test)]
        self._hay = None
        self._forget_cells()
        self.endResetModel()

    def keep(self, class_id: int, text: str, only: np.ndarray | None) -> np.ndarray:
        """Mask of the rows of class ``class_id`` (-1: all) whose name, class or split contains
        ``text``, and (with ``only``, a mask over test items) only those test items."""
        keep = np.ones(len(self.rows), bool)
        if class_id >= 0:
            keep &= self._labels == class_id
        elif class_id in (LABELLED, UNLABELLED_ONLY):
            keep &= (self._labels >= 0) == (class_id == LABELLED)
        if only is not None and len(only) == int((self._test >= 0).sum()):  # not a stale mask
            keep &= (self._test >= 0) & np.asarray(only, bool)[np.maximum(self._test, 0)]
        if text:
            hay = self._haystack()
            keep &= np.fromiter((text in h for h in hay), bool, len(hay))
        return keep

    def _haystack(self) -> list[str]:
        if self._hay is None:
            st = self.state
            self._hay = [
                f"{st.catalog.item_name(split, i)} {st.catalog.class_name(int(c))} {split}".lower()
                for (split, i), c in zip(self.rows, self._labels, strict=True)
            ]
        return self._hay

    def thumbnails_changed(self) -> None:
        if self.rows:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self.rows) - 1, len(COLUMNS) - 1)
            )

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def label(self, row: int) -> int:
        split, i = self.rows[row]
        return int(self.state.catalog.dataset.split(split).labels[i])  # type: ignore[union-attr]

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self.state.catalog.dataset is None:
            return None
        split, i = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return self.state.catalog.item_name(split, i)
            if col == 1:
                return self.state.catalog.class_name(self.label(index.row()))
            if col == 2:
                return split
            if col == 3:
                d = self.state.catalog.durations.get(self.state.catalog.item_path(split, i) or "")
                return f"{d:.1f} s" if d is not None else "—"
        elif role == Qt.ItemDataRole.TextAlignmentRole and col == 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        elif role == Qt.ItemDataRole.DecorationRole:
            if col == 0:
                return self._thumb(split, i)
            if col == 1:
                return self._dot(self.label(index.row()))
        elif role in (Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.FontRole) and col == 1:
            if self.label(index.row()) < 0:
                if role == Qt.ItemDataRole.ForegroundRole:
                    return UNLABELLED_GREY
                font = QFont()
                font.setItalic(True)
                return font
        elif role == Qt.ItemDataRole.UserRole:
            return (split, i)
        elif role == Qt.ItemDataRole.ToolTipRole and col == 0:
            path = self.state.catalog.item_path(split, i)
            if path is None:
                return "features only (no clip file)"
            d = self.state.catalog.durations.get(path)
            return f"{path} ({d:.1f} s)" if d is not None else path
        return None


class ItemsFilter(QAbstractProxyModel):
    """The table's filter: by class id (-1 for all), by a case-insensitive text (name, class,
    split) and by a mask of test items (``only``; None for all rows). Its rows are the array of
    the model's rows that pass (``ItemsModel.keep``)."""

    def __init__(self) -> None:
        super().__init__()
        self.class_id = -1
        self.text = ""
        self.only: np.ndarray | None = None
        self._rows = np.zeros(0, np.int64)  # source row of each row here
        self._at = np.zeros(0, np.int64)  # row here of each source row, -1 when filtered out

    def setSourceModel(self, model: ItemsModel) -> None:  # type: ignore[override]
        super().setSourceModel(model)
        model.modelReset.connect(self._refilter)
        model.dataChanged.connect(self._source_changed)
        self._refilter()

    def set_filter(self, class_id: int, text: str, only: np.ndarray | None = None) -> None:
        self.class_id, self.text, self.only = class_id, text.strip().lower(), only
        self._refilter()

    def _refilter(self) -> None:
        model: ItemsModel = self.sourceModel()  # type: ignore[assignment]
        self.beginResetModel()
        self._rows = np.flatnonzero(model.keep(self.class_id, self.text, self.only))
        self._at = np.full(len(model.rows), -1, np.int64)
        self._at[self._rows] = np.arange(len(self._rows))
        self.endResetModel()

    def _source_changed(self, *_args: Any) -> None:
        if len(self._rows):
            last = self.index(len(self._rows) - 1, self.columnCount() - 1)
            self.dataChanged.emit(self.index(0, 0), last)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        if parent.isValid() or not (0 <= row < len(self._rows) and 0 <= column < len(COLUMNS)):
            return QModelIndex()
        return self.createIndex(row, column)

    def parent(self, *args: Any) -> Any:  # type: ignore[override]
        if not args:  # QObject.parent()
            return super().parent()
        return QModelIndex()  # a flat table: no item has a parent

    def mapToSource(self, proxy: Index) -> QModelIndex:
        if not proxy.isValid() or proxy.row() >= len(self._rows):
            return QModelIndex()
        return self.sourceModel().index(int(self._rows[proxy.row()]), proxy.column())

    def mapFromSource(self, source: Index) -> QModelIndex:
        if not source.isValid() or source.row() >= len(self._at):
            return QModelIndex()
        row = int(self._at[source.row()])
        return self.index(row, source.column()) if row >= 0 else QModelIndex()


class DatasetPanel(QWidget):
    """The dataset's items; the row the user moves to (click or arrow keys) is the query."""

    openFileRequested = Signal()
    openFolderRequested = Signal()
    demoRequested = Signal()

    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.model = ItemsModel(state)
        self.proxy = ItemsFilter()
        self.proxy.setSourceModel(self.model)

        self.source = QLabel("No dataset")
        self.source.setWordWrap(True)
        self.source.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        demo = QPushButton("Demo")
        demo.setToolTip("Open the built-in demo dataset")
        open_file = QPushButton("Open .h5…")
        open_folder = QPushButton("Folder…")
        open_folder.setToolTip("Extract features from a folder of clips (or drop it on the window)")
        demo.clicked.connect(self.demoRequested)
        open_file.clicked.connect(self.openFileRequested)
        open_folder.clicked.connect(self.openFolderRequested)

        self.class_box = QComboBox()
        self.text_box = QLineEdit()
        self.text_box.setPlaceholderText("Filter by name, class or split")
        self.text_box.setClearButtonEnabled(True)
        self.class_box.currentIndexChanged.connect(self._refilter)
        self.text_box.textChanged.connect(self._refilter)
        self.selection_only = QCheckBox("Selection only")
        self.selection_only.setToolTip("Show only the clips of the selection")
        self.selection_only.setEnabled(False)
        self.selection_only.toggled.connect(self._refilter)
        self._from_table = False  # the selection being made is this table's
        self.count = QLabel()

        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # Several rows (Ctrl/Shift-click) become the selection; one row is the query.
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setIconSize(QSize(THUMB, THUMB))
        self.table.verticalHeader().hide()
        # Long names lose their middle ("clip_0…_0012.mp4"), not the end that tells them apart.
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(24)
        self.table.setSortingEnabled(False)
        self.table.setWordWrap(False)
        self.table.activated.connect(self._activated)
        self.table.clicked.connect(self._activated)
        # Moving with the arrow keys (or Page Up/Down) moves the query too.
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        self.table.selectionModel().selectionChanged.connect(self._rows_selected)
        self._showing_query = False

        top = QHBoxLayout()
        top.addWidget(demo)
        top.addWidget(open_file)
        top.addWidget(open_folder)
        filters = QHBoxLayout()
        filters.addWidget(self.class_box, 1)
        filters.addWidget(self.text_box, 2)
        filters.addWidget(self.selection_only)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.source)
        layout.addLayout(top)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.count)

        # Narrower than this and the clip names shrink to an ellipsis (restored layouts included);
        # no wider, so that the dock leaves the views their room on a 1024-pixel screen.
        self.setMinimumWidth(240)
        state.signals.datasetChanged.connect(self._dataset_changed)
        state.signals.thumbnailsChanged.connect(self._thumbnails_changed)
        state.signals.queryChanged.connect(self._query_changed)
        state.signals.selectionChanged.connect(self._selection_changed)

    def resizeEvent(self, event) -> None:
        # In a narrow dock (a 1024-pixel screen) the clip names need the length column's room;
        # a clip's length is still in its row's tooltip and in the views that play it.
        self.table.setColumnHidden(LENGTH, event.size().width() < WIDE_TABLE)
        super().resizeEvent(event)

    def _thumbnails_changed(self) -> None:
        # Rows grow to thumbnail height only once there are thumbnails to show.
        self.table.verticalHeader().setDefaultSectionSize(THUMB + 4)
        self.model.thumbnails_changed()
        self._fit_columns()  # durations arrive with the thumbnails

    def _dataset_changed(self) -> None:
        data = self.state.catalog.dataset
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.model.reset()
        self.class_box.blockSignals(True)
        self.class_box.clear()
        self.class_box.addItem("All classes", -1)
        if data is not None and not data.train.labelled.all():
            self.class_box.addItem("Labelled", LABELLED)
            self.class_box.addItem(self._dot(-1), "Unlabelled", UNLABELLED_ONLY)
        if data is not None:
            for c, name in enumerate(data.class_names):
                self.class_box.addItem(self._dot(c), name, c)
            counts = ", ".join(f"{len(data.split(s))} {s}" for s in ("train", "val", "test"))
            n_unlab = int((~data.train.labelled).sum())
            if n_unlab:
                counts += f" ({n_unlab} train unlabelled)"
            self.source.setText(
                f"<b>{data.attrs.get('title') or _short(data.source)}</b><br>"
                f"{data.num_classes} classes · {counts} · audio {data.audio_dim}-d, "
                f"visual {data.visual_dim}-d"
            )
        self.class_box.blockSignals(False)
        self._refilter()
        self._fit_columns()

    def _fit_columns(self) -> None:
        """Class, split and duration as narrow as their contents; the clip name takes the rest."""
        header = self.table.horizontalHeader()
        for col in range(1, len(COLUMNS)):
            # Contents of the first rows only: resizeColumnsToContents reads every row.
            width = self.table.fontMetrics().horizontalAdvance(COLUMNS[col]) + 14
            for row in range(min(self.proxy.rowCount(), 200)):
                width = max(width, self.table.sizeHintForIndex(self.proxy.index(row, col)).width())
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(col, width + 2)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

    def _dot(self, c: int) -> QPixmap:
        pm = QPixmap(12, 12)
        pm.fill(self.state.catalog.colors[c] if c >= 0 else UNLABELLED_GREY)
        return pm

    def _refilter(self) -> None:
        cid = self.class_box.currentData()
        sel = self.state.selection.current
        only = (
            sel.audio | sel.visual if sel is not None and self.selection_only.isChecked() else None
        )
        self.proxy.set_filter(cid if isinstance(cid, int) else -1, self.text_box.text(), only)
        self.count.setText(f"{self.proxy.rowCount()} of {self.model.rowCount()} items")
        self._query_changed()  # the query's row again, when it is still shown

    def _activated(self, index: QModelIndex) -> None:
        split, i = self.proxy.data(index, Qt.ItemDataRole.UserRole)
        q = self.state.retrieval.query
        if q is None or (q.split, q.index) != (split, i):
            self.state.retrieval.set_item_query(split, i)

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid() and not self._showing_query:
            self._activated(current)

    def _rows_selected(self, *_args: Any) -> None:
        """Several rows selected: their test clips become the selection."""
        rows = self.table.selectionModel().selectedRows()
        if len(rows) < 2 or self._showing_query:
            return
        items = [self.proxy.data(r, Qt.ItemDataRole.UserRole) for r in rows]
        test = [i for split, i in items if split == "test"]
        if len(test) < len(items):
            self.state.signals.message.emit(
                f"{len(items) - len(test)} train/val rows left out: the map and the selection "
                "hold test clips"
            )
        if test:
            self._from_table = True
            self.state.selection.select_clips(test)
            self._from_table = False

    def _selection_changed(self) -> None:
        """A selection made elsewhere (map, legend) filters the table to its clips."""
        has = self.state.selection.current is not None
        self.selection_only.blockSignals(True)
        self.selection_only.setEnabled(has)
        if not has:
            self.selection_only.setChecked(False)
        elif not self._from_table:
            self.selection_only.setChecked(True)
        self.selection_only.blockSignals(False)
        if not self._from_table:
            self._refilter()

    def _query_changed(self) -> None:
        q = self.state.retrieval.query
        if q is not None and not q.is_file:
            self.select_item(q.split, q.index)  # type: ignore[arg-type]

    def select_item(self, split: str, index: int) -> None:
        """Scroll to and highlight an item (e.g. a query picked on the map)."""
        try:
            row = self.model.rows.index((split, index))
        except ValueError:
            return
        proxy_index = self.proxy.mapFromSource(self.model.index(row, 0))
        if proxy_index.isValid() and self.table.currentIndex().row() != proxy_index.row():
            self._showing_query = True
            self.table.selectRow(proxy_index.row())
            self.table.scrollTo(proxy_index)
            self._showing_query = False


def _short(source: str) -> str:
    from pathlib import Path

    return Path(source).name if source else "dataset"
