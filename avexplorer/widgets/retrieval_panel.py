"""Retrieval view: the query, the direction, and the top-k results with hit/miss marks and AP.

A query comes from the dataset table, the embedding map, or a file dropped here (a video, a sound,
an image, or an ``.npz`` of features): ``fileDropped`` asks the app to encode and embed it in a
worker. Results come from ``Session.results``.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from avexplorer.session import Session
from avexplorer.widgets.audio_player import AudioPlayer

THUMB = 40
RESULT_COLUMNS = ("#", "Clip", "Class", "Cosine", "Match")


class RetrievalPanel(QWidget):
    fileDropped = Signal(str)

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.player = AudioPlayer(self)
        self.setAcceptDrops(True)

        self.query_thumb = QLabel()
        self.query_thumb.setFixedSize(64, 64)
        self.query_thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.query_thumb.setStyleSheet("border: 1px dashed #999;")
        self.query_label = QLabel(
            "No query. Pick an item in the table or on the map, or drop a video, sound, image "
            "or .npz of features here."
        )
        self.query_label.setWordWrap(True)
        self.query_label.setTextFormat(Qt.TextFormat.RichText)
        self.play_query = QPushButton("▶ Query")
        self.play_query.setToolTip("Play the query clip's audio")
        self.play_query.clicked.connect(self._play_query)

        self.direction = QComboBox()
        self.direction.addItems(["A2V", "V2A"])
        self.direction.setToolTip("A2V: audio query, visual gallery. V2A: the reverse.")
        self.direction.currentTextChanged.connect(session.set_direction)
        self.k = QSpinBox()
        self.k.setRange(1, 1000)
        self.k.setValue(session.k)
        self.k.setPrefix("top ")
        self.k.valueChanged.connect(session.set_k)
        self.ap_label = QLabel("AP —")
        self.ap_label.setToolTip("Average precision of this query over the full test ranking")

        self.table = QTableWidget(0, len(RESULT_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(RESULT_COLUMNS))
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(THUMB + 4)
        self.table.setIconSize(QSize(THUMB, THUMB))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(lambda _i: self._play_result())
        self.play_result = QPushButton("▶ Result")
        self.play_result.setToolTip("Play the selected result's audio (or double-click a row)")
        self.play_result.clicked.connect(self._play_result)
        self.status = QLabel()
        self.status.setWordWrap(True)

        head = QHBoxLayout()
        head.addWidget(self.query_thumb)
        head.addWidget(self.query_label, 1)
        controls = QHBoxLayout()
        controls.addWidget(self.direction)
        controls.addWidget(self.k)
        controls.addWidget(self.ap_label, 1)
        controls.addWidget(self.play_query)
        controls.addWidget(self.play_result)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(head)
        layout.addLayout(controls)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)

        session.queryChanged.connect(self._query_changed)
        session.resultsChanged.connect(self._results_changed)

    # ----- drops -------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.fileDropped.emit(url.toLocalFile())
                event.acceptProposedAction()
                return

    # ----- display -----------------------------------------------------------------------------
    def _pixmap(self, path: str | None, label: int | None, size: int) -> QPixmap:
        image = self.session.thumbnails.get(path) if path else None
        if image is not None:
            return QPixmap.fromImage(image).scaled(
                size,
                size,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        pm = QPixmap(size, size)
        color = self.session.colors[label] if label is not None and self.session.colors else None
        pm.fill(QColor(color).lighter(130) if color is not None else QColor("#ddd"))
        return pm

    def _query_changed(self) -> None:
        q = self.session.query
        if q is None:
            self.query_thumb.clear()
            self.query_label.setText("No query.")
            return
        self.direction.blockSignals(True)
        self.direction.setCurrentText("A2V" if q.modality == "audio" else "V2A")
        self.direction.blockSignals(False)
        where = f"{q.split} #{q.index}" if q.split is not None else "dropped file"
        self.query_label.setText(
            f"<b>{q.name}</b><br>{q.modality} query · {self.session.class_name(q.label)} · {where}"
        )
        self.query_thumb.setPixmap(self._pixmap(q.path, q.label, 60))

    def _results_changed(self) -> None:
        r = self.session.results
        self.table.setRowCount(0)
        if r is None:
            self.ap_label.setText("AP —")
            return
        s = self.session
        self.ap_label.setText(f"AP {r.ap:.3f}" if r.ap is not None else "AP — (no label)")
        self.table.setRowCount(len(r.indices))
        for row, (i, score, hit) in enumerate(zip(r.indices, r.scores, r.hits, strict=True)):
            i = int(i)
            label = int(s.dataset.test.labels[i])  # type: ignore[union-attr]
            clip = QTableWidgetItem(s.item_name("test", i))
            clip.setIcon(self._pixmap(s.item_path("test", i), label, THUMB))
            clip.setData(Qt.ItemDataRole.UserRole, i)
            cls = QTableWidgetItem(s.class_name(label))
            dot = QPixmap(12, 12)
            dot.fill(s.colors[label])
            cls.setIcon(dot)
            if r.query.label is None:
                mark = QTableWidgetItem("")
            else:
                mark = QTableWidgetItem("✔ hit" if hit else "✘ miss")
                mark.setForeground(QColor(30, 150, 50) if hit else QColor(200, 30, 30))
            for col, item in enumerate(
                (QTableWidgetItem(str(row + 1)), clip, cls, QTableWidgetItem(f"{score:.3f}"), mark)
            ):
                self.table.setItem(row, col, item)
        self.table.resizeColumnToContents(0)
        self.table.resizeColumnToContents(2)
        self.table.resizeColumnToContents(4)

    # ----- playback ----------------------------------------------------------------------------
    def _play_query(self) -> None:
        q = self.session.query
        self._say(self.player.play(q.path if q is not None else None) if q else "No query.")

    def _play_result(self) -> None:
        row = self.table.currentRow()
        if row < 0:
            self._say("Select a result to play.")
            return
        i = self.table.item(row, 1).data(Qt.ItemDataRole.UserRole)
        self._say(self.player.play(self.session.item_path("test", i)))

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.session.message.emit(text)
