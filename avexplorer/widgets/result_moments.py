"""A retrieval result's time in its table row: where in the clip it matches the query.

The delegate paints one cell per row: the result's strip (the query's cosine with each of its
segments, the best moment outlined and marked ▲, on the scale shared by every strip) and, when
the results are sounds, the result's spectrogram above it on the same time axis. A row with
nothing to show (no segments, no sound) stays blank; a strip still being computed shows "…".
Clicking a strip asks for the result to be played from the clicked moment (``momentClicked``).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem, QWidget

from avexplorer.state.catalog import SPECTROGRAM_HOP, SPECTROGRAM_SR
from avexplorer.state.time_axis import Strip
from avexplorer.widgets.moment_strips import paint_strip, seconds_at, strip_span

STRIP_UNDER_SPECTROGRAM = 9  # px: the strip's height under a spectrogram
STRIP_ALONE = 16  # px: without one

Cell = tuple[Strip | str | None, QImage | None]


class ResultMomentsDelegate(QStyledItemDelegate):
    momentClicked = Signal(int, float)  # row, seconds into the result

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.cells: dict[int, Cell] = {}  # row -> (strip, or why none, None: computing; picture)
        self.levels = (-1.0, 1.0)

    def show_cells(self, cells: dict[int, Cell], levels: tuple[float, float]) -> None:
        self.cells, self.levels = cells, levels

    def _rects(self, rect: QRectF, strip: Strip | str | None, image: QImage | None):
        """(spectrogram rect or None, strip rect) inside a cell."""
        r = rect.adjusted(3, 3, -3, -3)
        if image is None:
            return None, QRectF(r.x(), r.center().y() - STRIP_ALONE / 2, r.width(), STRIP_ALONE)
        if not isinstance(strip, Strip):
            return r, None
        h = STRIP_UNDER_SPECTROGRAM
        strip_rect = QRectF(r.x(), r.bottom() - h, r.width(), h)
        # the picture covers its own seconds of sound, on the strip's time axis
        seconds = image.width() * SPECTROGRAM_HOP / SPECTROGRAM_SR
        width = r.width() * min(1.0, seconds / strip_span(strip))
        return QRectF(r.x(), r.y(), width, r.height() - h - 1), strip_rect

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        super().paint(painter, option, index)  # the row's selection background
        strip, image = self.cells.get(index.row(), (None, None))
        if index.row() not in self.cells:
            return
        spec_rect, strip_rect = self._rects(QRectF(option.rect), strip, image)
        painter.save()
        if image is not None and spec_rect is not None:
            painter.drawImage(spec_rect, image)
        if isinstance(strip, Strip) and strip_rect is not None:
            outline = strip_rect.united(spec_rect) if spec_rect is not None else None
            paint_strip(painter, strip_rect, strip, self.levels, outline)
        elif strip is None and strip_rect is not None:
            painter.setPen(QColor("#999"))
            painter.drawText(strip_rect, Qt.AlignmentFlag.AlignCenter, "…")
        painter.restore()

    def editorEvent(self, event: QEvent, model, option: QStyleOptionViewItem, index) -> bool:
        strip, image = self.cells.get(index.row(), (None, None))
        if (
            isinstance(strip, Strip)
            and event.type() == QEvent.Type.MouseButtonRelease
            and isinstance(event, QMouseEvent)
            and event.button() == Qt.MouseButton.LeftButton
        ):
            _, rect = self._rects(QRectF(option.rect), strip, image)
            if rect is not None and rect.width() > 0:
                fraction = (event.position().x() - rect.x()) / rect.width()
                self.momentClicked.emit(index.row(), seconds_at(strip, min(1.0, fraction)))
        return False
