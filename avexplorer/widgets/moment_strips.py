"""Moments view: under each retrieval result, the query's similarity over the result's time.

One strip per result of the current query (same order as the retrieval table): a cell per
segment of the result's other modality, coloured by cosine (one scale for all strips), the best
moment outlined and marked. Clicking a strip plays that result's sound from the clicked moment.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QGridLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from avexplorer.state.app_state import AppState
from avexplorer.state.time_axis import Strip, TimeState
from avexplorer.widgets.audio_player import AudioPlayer

STRIP_HEIGHT = 26
_LUT = pg.colormap.get("viridis").getLookupTable(0.0, 1.0, 256, alpha=False)


def strip_span(strip: Strip) -> float:
    """Seconds from the strip's first segment's start to its last's end."""
    return float(strip.bounds()[-1, 1]) or 1.0


def seconds_at(strip: Strip, fraction: float) -> float:
    """The moment at ``fraction`` of the strip's width."""
    return max(0.0, fraction * strip_span(strip))


def strip_tooltip(strip: Strip) -> str:
    a, b = strip.bounds()[strip.best]
    return f"best moment {a:.1f}-{b:.1f} s (cosine {strip.scores[strip.best]:.3f}); click to play"


def paint_strip(
    p: QPainter,
    rect: QRectF,
    strip: Strip,
    levels: tuple[float, float],
    outline: QRectF | None = None,
) -> None:
    """A cell per segment in ``rect`` coloured by cosine over ``levels``, the best moment outlined
    (over ``outline``'s height when given: e.g. a spectrogram above the strip) and marked ▲."""
    lo, hi = levels
    scale = rect.width() / strip_span(strip)
    for (a, b), score in zip(strip.bounds(), strip.scores, strict=True):
        u = 0.0 if hi <= lo else (float(score) - lo) / (hi - lo)
        color = QColor(*(int(c) for c in _LUT[int(np.clip(u, 0, 1) * 255)]))
        p.fillRect(QRectF(rect.x() + a * scale, rect.y(), (b - a) * scale, rect.height()), color)
    a, b = strip.bounds()[strip.best]
    box = outline if outline is not None else rect.adjusted(0, -1, 0, 1)
    x0 = rect.x() + a * scale
    p.setPen(QPen(QColor("#e6194b"), 2))
    p.drawRect(QRectF(x0 + 1, box.y(), (b - a) * scale - 2, box.height()))
    p.drawText(
        QRectF(x0, rect.y(), (b - a) * scale, rect.height()), Qt.AlignmentFlag.AlignCenter, "▲"
    )


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
        return strip_tooltip(self.strip) if self.strip is not None else self.text

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        w, h = self.width(), self.height()
        if self.strip is None:
            p.setPen(QColor("#888"))
            p.drawText(QRectF(0, 0, w, h), Qt.AlignmentFlag.AlignVCenter, self.text)
            return
        paint_strip(p, QRectF(0, 2, w, h - 4), self.strip, self.levels)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.strip is not None and self.width() > 0:
            self.clicked.emit(seconds_at(self.strip, event.position().x() / self.width()))


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
        time_state.stripsChanged.connect(self.refresh)  # follows every change of results
        self.refresh()

    def results(self) -> list[int]:
        return self.time.strip_rows()

    def refresh(self) -> None:
        r = self.state.retrieval.results
        indices = self.results()
        self.strips = {i: self.time.strips.get(i) for i in indices}
        if r is None or not indices:
            self.title.setText(
                "Query with an item or a file: each result's similarity over its "
                "time shows here, its best moment marked."
            )
            self._layout([])
            return
        if self.time.strips_note is not None:  # one reason for every row: said once
            self.title.setText(
                f"No moments for <b>{html.escape(r.query.name)}</b>'s results: "
                f"{html.escape(self.time.strips_note)}"
            )
            self._layout([])
            return
        other = "pictures" if r.modality == "audio" else "sound"
        self.title.setText(
            f"<b>{r.query.name}</b> ({r.modality}) against the {other} of each result, segment "
            "by segment; ▲ the best moment; click a strip to play from there"
        )
        self._layout(indices)

    def _layout(self, indices: list[int]) -> None:
        while len(self.rows) < len(indices):
            name, strip, best = QLabel(), StripWidget(), QLabel()
            row = len(self.rows)
            strip.clicked.connect(lambda t, row=row: self.play_result_at(row, t))
            for col, w in enumerate((name, strip, best)):
                self.grid.addWidget(w, row, col)
            self.rows.append((name, strip, best))
        levels = self.time.strip_levels()
        for row, (name, strip, best) in enumerate(self.rows):
            visible = row < len(indices)
            for w in (name, strip, best):
                w.setVisible(visible)
            if not visible:
                continue
            i = indices[row]
            st = self.strips.get(i)
            name.setText(f"{row + 1}. {self.state.catalog.item_name('test', i)}")
            if isinstance(st, Strip):
                a, b = st.bounds()[st.best]
                strip.show_strip(st, levels)
                best.setText(f"{a:g}-{b:.3g} s · {st.scores[st.best]:.2f}")
            else:
                strip.show_strip(None, levels, st if isinstance(st, str) else "computing…")
                best.setText("")

    def play_result_at(self, row: int, seconds: float) -> str:
        indices = self.results()
        if row >= len(indices):
            return ""
        text = self.player.play_moment(self.state.catalog.item_path("test", indices[row]), seconds)
        self.status.setText(text)
        self.state.signals.message.emit(text)
        return text
