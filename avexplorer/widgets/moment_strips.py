"""Moments view: under each retrieval result, the query's similarity over the result's time.

One strip per result of the current query (same order as the retrieval table): a cell per
segment of the result's other modality, coloured by cosine (one scale for all strips), the best
moment outlined and marked. Clicking a strip plays that result's sound from the clicked moment.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QGridLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from avexplorer.state import AppState
from avexplorer.time_state import Strip, TimeState
from avexplorer.widgets.audio_player import AudioPlayer

MAX_STRIPS = 20
STRIP_HEIGHT = 26
_LUT = pg.colormap.get("viridis").getLookupTable(0.0, 1.0, 256, alpha=False)


class StripWidget(QWidget):
    """One result's similarity over time; emits the clicked moment in seconds."""

    clicked = Signal(float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.strip: Strip | None = None
        self.levels = (-1.0, 1.0)
        self.text = ""
        self.setFixedHeight(STRIP_HEIGHT)
        self.setMinimumWidth(120)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def show_strip(self, strip: Strip | None, levels: tuple[float, float], text: str = "") -> None:
        self.strip, self.levels, self.text = strip, levels, text
        self.setToolTip(self._tooltip())
        self.update()

    def _tooltip(self) -> str:
        st = self.strip
        if st is None:
            return self.text
        a, b = st.bounds()[st.best]
        return f"best moment {a:.1f}-{b:.1f} s (cosine {st.scores[st.best]:.3f}); click to play"

    def _span(self) -> float:
        st = self.strip
        assert st is not None
        return float(st.bounds()[-1, 1]) or 1.0

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        w, h = self.width(), self.height()
        st = self.strip
        if st is None:
            p.setPen(QColor("#888"))
            p.drawText(QRectF(0, 0, w, h), Qt.AlignmentFlag.AlignVCenter, self.text)
            return
        lo, hi = self.levels
        scale = w / self._span()
        for (a, b), score in zip(st.bounds(), st.scores, strict=True):
            u = 0.0 if hi <= lo else (float(score) - lo) / (hi - lo)
            color = QColor(*(int(c) for c in _LUT[int(np.clip(u, 0, 1) * 255)]))
            p.fillRect(QRectF(a * scale, 2, (b - a) * scale, h - 4), color)
        a, b = st.bounds()[st.best]
        p.setPen(QPen(QColor("#e6194b"), 2))
        p.drawRect(QRectF(a * scale + 1, 1, (b - a) * scale - 2, h - 2))
        p.drawText(QRectF(a * scale, 0, (b - a) * scale, h), Qt.AlignmentFlag.AlignCenter, "▲")

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.strip is not None and self.width() > 0:
            self.clicked.emit(max(0.0, event.position().x() / self.width() * self._span()))


class MomentStrips(QWidget):
    def __init__(self, state: AppState, time_state: TimeState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.time = state, time_state
        self.player = AudioPlayer(self, state)
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.rows: list[tuple[QLabel, StripWidget, QLabel]] = []
        self.strips: dict[int, Strip | str | None] = {}  # test index -> what its strip shows
        self._grid_host = QWidget()
        self.grid = QGridLayout(self._grid_host)
        self.grid.setColumnStretch(1, 1)
        self.grid.setVerticalSpacing(2)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._grid_host)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.status)
        state.resultsChanged.connect(self.refresh)
        time_state.segmentsChanged.connect(self.refresh)
        self.refresh()

    def results(self) -> list[int]:
        r = self.state.results
        return [int(i) for i in r.indices[:MAX_STRIPS]] if r is not None else []

    def refresh(self) -> None:
        s, r = self.state, self.state.results
        indices = self.results()
        if r is None or not indices:
            self.title.setText(
                "Query with an item or a file: each result's similarity over its "
                "time shows here, its best moment marked."
            )
            self.strips = {}
            self._layout([])
            return
        other = "pictures" if r.modality == "audio" else "sound"
        self.title.setText(
            f"<b>{r.query.name}</b> ({r.modality}) against the {other} of each result, segment "
            "by segment; ▲ the best moment; click a strip to play from there"
        )
        if not self.time.stores_segments("test"):  # encode the results' clips in one job
            self.time.request_segments(
                [p for i in indices if (p := s.item_path("test", i)) is not None]
            )
        self.strips = {i: self.time.strip(i) for i in indices}
        self._layout(indices)

    def levels(self) -> tuple[float, float]:
        scores = [st.scores for st in self.strips.values() if isinstance(st, Strip)]
        if not scores:
            return -1.0, 1.0
        allv = np.concatenate(scores)
        return float(allv.min()), float(allv.max())

    def _layout(self, indices: list[int]) -> None:
        while len(self.rows) < len(indices):
            name, strip, best = QLabel(), StripWidget(), QLabel()
            row = len(self.rows)
            strip.clicked.connect(lambda t, row=row: self.play_result_at(row, t))
            for col, w in enumerate((name, strip, best)):
                self.grid.addWidget(w, row, col)
            self.rows.append((name, strip, best))
        levels = self.levels()
        for row, (name, strip, best) in enumerate(self.rows):
            visible = row < len(indices)
            for w in (name, strip, best):
                w.setVisible(visible)
            if not visible:
                continue
            i = indices[row]
            st = self.strips.get(i)
            name.setText(f"{row + 1}. {self.state.item_name('test', i)}")
            if isinstance(st, Strip):
                a, b = st.bounds()[st.best]
                strip.show_strip(st, levels)
                best.setText(f"{a:g}-{b:.3g} s · {st.scores[st.best]:.2f}")
            else:
                strip.show_strip(None, levels, st if isinstance(st, str) else "encoding segments…")
                best.setText("")

    def play_result_at(self, row: int, seconds: float) -> str:
        indices = self.results()
        if row >= len(indices):
            return ""
        path = self.state.item_path("test", indices[row])
        text = self.player.play(path, seconds)
        if path is not None and not text.startswith("Playing"):
            text = f"{Path(path).name} at {seconds:.1f} s: {text}"
        self.status.setText(text)
        self.state.message.emit(text)
        return text
