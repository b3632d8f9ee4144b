"""Retrieval view: the query, the direction, the top-k results with hit/miss marks and AP, where
in each of the top results' time it matches (``result_moments``: a strip, and a spectrogram when
the results are sounds), and the spectrograms of the query's and the selected result's sound.

A query comes from the dataset table, the embedding map, File > Query with a file… (the button
here, or its shortcut), or a file dropped here: a video, a sound, an image, or an ``.npz`` of
features. Everything shown comes from the state; the direction box and k are the state's.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from avexplorer.state.app_state import AppState
from avexplorer.state.retrieval import DIRECTIONS, MODALITY_NOUNS, file_kind
from avexplorer.state.time_axis import STRIP_ROWS, Strip
from avexplorer.widgets.audio_player import AudioPlayer
from avexplorer.widgets.flow_row import FlowRow, group
from avexplorer.widgets.moment_strips import strip_tooltip
from avexplorer.widgets.result_moments import ResultMomentsDelegate

THUMB = 40
QUERY_THUMB = 64
SPECTROGRAM_HEIGHT = 72
RESULT_COLUMNS = ("#", "Clip", "Class", "Cosine", "Hit", "When")
CLIP, HIT, WHEN = (RESULT_COLUMNS.index(c) for c in ("Clip", "Hit", "When"))
WHEN_MIN = 80  # px: the narrowest "When" strip still worth clicking; clip names come first


class RetrievalPanel(QWidget):
    queryFileRequested = Signal()  # the window opens its file dialog (File > Query with a file)

    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.player = AudioPlayer(self, state)
        self.setAcceptDrops(True)

        self.query_thumb = QLabel()
        self.query_thumb.setFixedSize(QUERY_THUMB, QUERY_THUMB)
        self.query_thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.query_thumb.setStyleSheet("border: 1px dashed #999;")
        self.query_label = QLabel(
            "No query. Pick an item in the table or on the map, or query with a file: a video, "
            "sound, image or .npz of features (button below, or drop it here)."
        )
        self.query_label.setWordWrap(True)
        self.query_label.setTextFormat(Qt.TextFormat.RichText)
        self.file_button = QPushButton("Query with a file…")
        self.file_button.setToolTip(
            "Query with a video, sound, image or .npz of features (Ctrl+Shift+F, or drop a file)"
        )
        self.file_button.clicked.connect(self.queryFileRequested)
        self.play_query = QPushButton("▶ Query")
        self.play_query.setToolTip("Play the query clip's audio")
        self.play_query.clicked.connect(self._play_query)

        self.direction = QComboBox()
        self.direction.addItems(list(DIRECTIONS))
        self.direction.setCurrentText(state.retrieval.direction)
        self.direction.setToolTip("A2V: audio query, visual gallery. V2A: the reverse.")
        self.direction.currentTextChanged.connect(state.retrieval.set_direction)
        self.k = QSpinBox()
        self.k.setRange(1, 1000)
        self.k.setValue(state.retrieval.k)
        self.k.setPrefix("top ")
        self.k.valueChanged.connect(state.retrieval.set_k)
        self.ap_label = QLabel("AP —")
        self.ap_label.setToolTip("Average precision of this query over the full test ranking")
        self.ap_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

        self.table = QTableWidget(0, len(RESULT_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(RESULT_COLUMNS))
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(THUMB + 4)
        self.table.setIconSize(QSize(THUMB, THUMB))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        # Clip names lose their middle, never their end ("clip_0…_0012.mp4"), and only once the
        # other columns are at their narrowest (``_fit_columns``).
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.horizontalHeader().setMinimumSectionSize(24)  # "Hit", "#": narrow columns
        self.table.horizontalHeaderItem(HIT).setToolTip(
            "✔: the result is of the query's class; ✘: it is not (a file query has no class)"
        )
        self.table.doubleClicked.connect(lambda _i: self._play_result())
        self.table.itemSelectionChanged.connect(self._show_spectrograms)
        self.moments = ResultMomentsDelegate(self.table)
        self.moments.momentClicked.connect(self._play_result_at)
        self.table.setItemDelegateForColumn(WHEN, self.moments)
        self.table.horizontalHeaderItem(WHEN).setToolTip(
            "Where in each top result's time it matches the query: its similarity segment by "
            "segment, the best moment marked ▲ (a sound result's spectrogram above it); click "
            "to play from there"
        )
        self.table.viewport().installEventFilter(self)
        self.table.setColumnHidden(WHEN, True)  # until a row has something to show
        for column in (0, 2, 3, 4):  # before the first query, as wide as their headers
            self.table.resizeColumnToContents(column)
        self._fit_columns()
        self.play_result = QPushButton("▶ Result")
        self.play_result.setToolTip("Play the selected result's audio (or double-click a row)")
        self.play_result.clicked.connect(self._play_result)

        # Sound, by eye: the query's and the selected result's spectrograms (also without a
        # sound device). Fixed height, so the table does not jump when they arrive.
        self.query_spec = _spectrogram_label()
        self.result_spec = _spectrogram_label()
        self.query_spec_title = QLabel("Query sound")
        self.result_spec_title = QLabel("Selected result sound")
        specs = QGridLayout()
        specs.addWidget(self.query_spec_title, 0, 0)
        specs.addWidget(self.result_spec_title, 0, 1)
        specs.addWidget(self.query_spec, 1, 0)
        specs.addWidget(self.result_spec, 1, 1)
        self.status = QLabel()
        self.status.setWordWrap(True)
        # In the results' place when a query has none: why, and what to do about it.
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setTextFormat(Qt.TextFormat.RichText)
        self.notice.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.notice.setStyleSheet(
            "background: #fff8e1; border: 1px solid #e0c060; padding: 10px; font-size: 11pt;"
        )
        self.notice.linkActivated.connect(state.retrieval.set_direction)
        self.notice.hide()

        head = QHBoxLayout()
        head.addWidget(self.query_thumb)
        head.addWidget(self.query_label, 1)
        controls = QWidget()  # wraps onto two lines in a narrow panel
        flow = FlowRow(controls)
        flow.addWidget(group(self.direction, self.k))
        flow.addWidget(self.ap_label)
        flow.addWidget(group(self.play_query, self.play_result))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(head)
        layout.addWidget(self.file_button)
        layout.addWidget(controls)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.notice, 1)
        layout.addLayout(specs)
        layout.addWidget(self.status)
        self.setMinimumWidth(300)

        state.signals.queryChanged.connect(self._query_changed)
        state.signals.directionChanged.connect(self._direction_changed)
        state.signals.resultsChanged.connect(self._results_changed)
        state.signals.selectionChanged.connect(self._results_changed)
        state.signals.thumbnailsChanged.connect(self._query_changed)
        state.signals.thumbnailsChanged.connect(self._show_result_pictures)
        state.signals.spectrogramsChanged.connect(self._show_spectrograms)
        state.signals.spectrogramsChanged.connect(self._show_moments)
        state.time.stripsChanged.connect(self._show_moments)

    # ----- drops -------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.state.retrieval.query_with_file(url.toLocalFile())
                event.acceptProposedAction()
                return

    # ----- display -----------------------------------------------------------------------------
    def _pixmap(self, path: str | None, label: int | None, size: int, image=None) -> QPixmap:
        image = (
            image
            if image is not None
            else (self.state.catalog.thumbnails.get(path) if path else None)
        )
        if image is not None:
            return QPixmap.fromImage(image).scaled(
                size,
                size,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        pm = QPixmap(size, size)
        color = (
            self.state.catalog.colors[label]
            if label is not None and self.state.catalog.colors
            else None
        )
        pm.fill(QColor(color).lighter(130) if color is not None else QColor("#ddd"))
        return pm

    def _direction_changed(self, direction: str) -> None:
        self.direction.blockSignals(True)
        self.direction.setCurrentText(direction)
        self.direction.blockSignals(False)
        self._query_changed()

    def _query_changed(self) -> None:
        q, s = self.state.retrieval.query, self.state
        if q is None:
            self.query_thumb.clear()
            self.query_label.setText("No query.")
            return
        where = (
            "file" if q.is_file else "selection" if q.group is not None else f"{q.split} #{q.index}"
        )
        cls = s.catalog.class_name(q.label) if q.label is not None else "no label"
        modality = s.retrieval.query_modality
        if q.is_file:
            # A file says what it holds; a sound asked for V2A is no "visual query".
            features, noun = q.features or {}, MODALITY_NOUNS[modality]
            used = f"queried by its {noun}" if modality in features else f"no {noun} to query with"
            self.query_label.setText(
                f"<b>{q.name}</b><br>{file_kind(features)} file · {used} · {cls}"
            )
        else:
            self.query_label.setText(f"<b>{q.name}</b><br>{modality} query · {cls} · {where}")
        self.query_thumb.setPixmap(self._pixmap(q.path, q.label, QUERY_THUMB, q.image))
        self._show_spectrograms()

    def _results_changed(self) -> None:
        r = self.state.retrieval.results
        self.table.setRowCount(0)
        self._show_notice()
        if r is None:
            self.ap_label.setText("AP —")
            return
        s = self.state
        self.ap_label.setText(f"AP {r.ap:.3f}" if r.ap is not None else "no AP (no class)")
        self.table.setRowCount(len(r.indices))
        # Results in the selection (their side of it: results are of the other modality) are
        # shown in bold.
        sel = s.selection.current
        chosen = None
        if sel is not None and len(sel) == len(s.catalog.dataset.test):  # type: ignore[union-attr]
            chosen = sel.visual if r.modality == "audio" else sel.audio
        for row, (i, score) in enumerate(zip(r.indices, r.scores, strict=True)):
            i = int(i)
            label = int(s.catalog.dataset.test.labels[i])  # type: ignore[union-attr]
            clip = QTableWidgetItem(s.catalog.item_name("test", i))
            clip.setIcon(self._pixmap(s.catalog.item_path("test", i), label, THUMB))
            clip.setData(Qt.ItemDataRole.UserRole, i)
            if chosen is not None and chosen[i]:
                font = clip.font()
                font.setBold(True)
                clip.setFont(font)
                clip.setToolTip("In the selection")
            cls = QTableWidgetItem(s.catalog.class_name(label))
            dot = QPixmap(12, 12)
            dot.fill(s.catalog.colors[label])
            cls.setIcon(dot)
            if r.hits is None:  # a file query has no class: nothing is a hit or a miss
                mark = QTableWidgetItem("")
            else:
                hit = bool(r.hits[row])
                mark = QTableWidgetItem("✔" if hit else "✘")
                mark.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                mark.setToolTip("of the query's class" if hit else "of another class")
                mark.setForeground(QColor(30, 150, 50) if hit else QColor(200, 30, 30))
            for col, item in enumerate(
                (QTableWidgetItem(str(row + 1)), clip, cls, QTableWidgetItem(f"{score:.3f}"), mark)
            ):
                self.table.setItem(row, col, item)
        for column in (0, 2, 3, 4):
            self.table.resizeColumnToContents(column)
        self._fit_columns()
        self.table.selectRow(0)  # the best match, to hear or see beside the query
        self._show_spectrograms()
        if r.modality == "visual":  # the results are sounds: their spectrograms go in the rows
            s.catalog.request_spectrograms(
                [p for i in r.indices[:STRIP_ROWS] if (p := s.catalog.item_path("test", int(i)))]
            )
        self._show_moments()

    def _show_notice(self) -> None:
        """Why the query has no results, where the results would be, with the fix a click away."""
        why = self.state.retrieval.no_results
        self.notice.setVisible(why is not None)
        self.table.setVisible(why is None)
        if why is None:
            return
        text = html.escape(why.reason)
        if why.direction is not None:
            text += f"<br><a href='{why.direction}'>Switch to {why.direction}</a>"
        self.notice.setText(text)

    def _show_moments(self) -> None:
        """Each top row's strip (and spectrogram, for sounds) from the state; the column shows
        only while some row has one (or one is being computed)."""
        s, r = self.state, self.state.retrieval.results
        cells = {}
        for row, i in enumerate(s.time.strip_rows() if r is not None else []):
            if row >= self.table.rowCount():  # the table is about to be refilled
                break
            strip = s.time.strips.get(i)
            path = s.catalog.item_path("test", i)
            image = s.catalog.spectrograms.get(path) if path and r.modality == "visual" else None  # type: ignore[union-attr]
            cells[row] = (strip, image)
            item = self.table.item(row, WHEN)
            if item is None:
                item = QTableWidgetItem()
                self.table.setItem(row, WHEN, item)
            if isinstance(strip, Strip):
                item.setToolTip(strip_tooltip(strip))
            else:
                item.setToolTip(strip if strip is not None else "computing…")
        self.moments.show_cells(cells, s.time.strip_levels())
        shown = any(
            isinstance(st, Strip) or st is None or im is not None for st, im in cells.values()
        )
        if self.table.isColumnHidden(WHEN) == shown:
            self.table.setColumnHidden(WHEN, not shown)
            self._fit_columns()
        self.table.viewport().update()

    def _fit_columns(self) -> None:
        """Clip names in full, the "When" strips in what is left: with no strips to show the
        clip column takes the spare width; with them, its names' width (cut in the middle only
        when the strips would get less than ``WHEN_MIN``) and the strips the rest."""
        header = self.table.horizontalHeader()
        if self.table.isColumnHidden(WHEN):
            header.setSectionResizeMode(CLIP, QHeaderView.ResizeMode.Stretch)
            return
        header.setSectionResizeMode(CLIP, QHeaderView.ResizeMode.Interactive)
        others = sum(self.table.columnWidth(c) for c in (0, 2, 3, 4))
        free = self.table.viewport().width() - others
        wanted = max(self.table.sizeHintForColumn(CLIP), header.sectionSizeHint(CLIP))
        clip = max(60, min(wanted, free - WHEN_MIN))
        self.table.setColumnWidth(CLIP, clip)
        self.table.setColumnWidth(WHEN, max(WHEN_MIN, free - clip))

    def eventFilter(self, watched, event) -> bool:
        # The table's viewport changes width with the panel and when its scroll bar comes or
        # goes: the columns follow it.
        if event.type() == QEvent.Type.Resize:
            self._fit_columns()
        return False

    def _show_result_pictures(self) -> None:
        """The results' first frames, once the thumbnails arrive (often after the first query)."""
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 1)
            if item is not None:
                i = item.data(Qt.ItemDataRole.UserRole)
                label = int(self.state.catalog.dataset.test.labels[i])  # type: ignore[union-attr]
                item.setIcon(self._pixmap(self.state.catalog.item_path("test", i), label, THUMB))

    def selected_result(self) -> int | None:
        row = self.table.currentRow()
        item = self.table.item(row, 1) if row >= 0 else None
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _show_spectrograms(self) -> None:
        q, s = self.state.retrieval.query, self.state
        i = self.selected_result()
        paths = (
            q.path if q is not None else None,
            s.catalog.item_path("test", i) if i is not None else None,
        )
        for label, path in zip((self.query_spec, self.result_spec), paths, strict=True):
            image: QImage | None = s.catalog.spectrograms.get(path) if path else None
            if image is not None:
                label.setPixmap(
                    QPixmap.fromImage(image).scaled(
                        max(label.width(), 40),
                        SPECTROGRAM_HEIGHT,
                        Qt.AspectRatioMode.IgnoreAspectRatio,
                        Qt.TransformationMode.SmoothTransformation,
                    )
                )
                label.setToolTip(f"Log-mel spectrogram of {path}")
            else:
                label.clear()
                if label is self.result_spec and i is None:
                    label.setText("select a result")
                else:
                    label.setText("no sound" if not path or path in s.catalog.spectrograms else "…")
        wanted = [p for p in paths if p and p not in s.catalog.spectrograms]
        if wanted:
            s.catalog.request_spectrograms(wanted)

    # ----- playback ----------------------------------------------------------------------------
    def _play_query(self) -> None:
        q = self.state.retrieval.query
        self._say(self.player.play(q.path) if q is not None else "No query.")

    def _play_result(self) -> None:
        i = self.selected_result()
        if i is None:
            self._say("Select a result to play.")
            return
        self._say(self.player.play(self.state.catalog.item_path("test", i)))

    def _play_result_at(self, row: int, seconds: float) -> None:
        item = self.table.item(row, 1)
        if item is not None:
            i = item.data(Qt.ItemDataRole.UserRole)
            self._say(self.player.play_moment(self.state.catalog.item_path("test", i), seconds))

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.state.signals.message.emit(text)


def _spectrogram_label() -> QLabel:
    label = QLabel()
    label.setFixedHeight(SPECTROGRAM_HEIGHT)
    label.setMinimumWidth(80)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setStyleSheet("background: #f4f4f4; color: #888;")
    return label
