"""The teacher's soft-alignment matrix S beside the student's cosine similarities, live.

Both matrices are for the latest snapshot batch, audio rows x visual columns, reordered by class
so that same-class blocks sit on the diagonal; white lines mark class boundaries. Hovering a cell
names the two clips, their classes and both values.

Colours: S in [0, 1] on viridis. The student's cosines on a diverging map centred on 0 (blue:
dissimilar, white: orthogonal, red: similar) over a symmetric range of +-0.25, 0.5, 0.75 or 1,
the smallest that holds the batch's 99th percentile of |cosine|: the scale stays readable when
early cosines are small and changes rarely (each change regenerates the bar's axis). Titles are
static; what changes per snapshot is written in the label under the plots.

Where each row and column of S came from is marked by a strip left of the rows and above the
columns (``pair_kinds``): green for a pair in the annotated subset A (its one-hot label), orange
for a labelled pair the teacher aligned (U), grey for an unlabelled pair (teacher only; these
sort first, before class 0).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from avexplorer.state.app_state import AppState
from avexplorer.widgets.paint_pacing import FrameScheduler
from avexplorer.widgets.training_plots import cache_axes
from core.training.events import AlignmentSnapshot

REFRESH_MS = 200  # snapshots are occasional; a fifth of a second is soon enough
THUMB_HEIGHT = 40
CAPTION_WIDE = 700  # px: from this width the caption under the heatmaps fits on two lines
# What the left matrix is for each method: psd's teacher aligns softly; triplet has no teacher
# (its targets are the labels' agreement) and infonce's targets are the positive pairs. Short:
# two matrices with their colour bars must fit beside the run form on a 1024-pixel screen.
LEFT_TITLES = {
    "psd": "Teacher alignment S",
    "triplet": "Label agreement",
    "infonce": "Positive pairs",
}


FROM_LABEL, FROM_TEACHER, UNLABELLED_PAIR = 0, 1, 2
KIND_NAMES = ("from its label", "from the teacher", "unlabelled: from the teacher")
MARK_COLOURS = np.array([[44, 160, 44], [255, 127, 14], [160, 160, 160]], np.uint8)


def pair_kinds(labels: np.ndarray, annotated: np.ndarray) -> np.ndarray:
    """[n] where each row/column of S came from: ``FROM_LABEL`` (annotated, in A),
    ``FROM_TEACHER`` (a labelled pair in U) or ``UNLABELLED_PAIR`` (no label: the teacher's)."""
    kinds = np.where(np.asarray(annotated, bool), FROM_LABEL, FROM_TEACHER)
    return np.where(np.asarray(labels) < 0, UNLABELLED_PAIR, kinds)


def cosine_range(cosine: np.ndarray) -> float:
    """Half-width of the student's symmetric colour range: 0.25, 0.5, 0.75 or 1."""
    if not cosine.size:
        return 1.0
    q = float(np.percentile(np.abs(cosine), 99))
    return float(min(1.0, max(0.25, np.ceil(q * 4) / 4)))


class _Matrix:
    """One heatmap: a PlotItem with an ImageItem, class-boundary lines and a colour bar."""

    def __init__(
        self,
        layout: pg.GraphicsLayout,
        col: int,
        title: str,
        levels: tuple[float, float],
        cmap: str,
        bar_label: str,
        left_label: bool = True,
    ):
        self.plot: pg.PlotItem = layout.addPlot(row=0, col=col)
        self.plot.setTitle(title, size="9pt")
        self.plot.disableAutoRange()  # the matrix is framed explicitly in ``set``
        self.plot.invertY(True)  # row 0 at the top, as in a matrix
        if left_label:  # the right-hand matrix shares the rows: its ticks suffice
            self.plot.setLabel("left", "audio (by class)")
        self.plot.setLabel("bottom", "visual (by class)")
        self.plot.setMenuEnabled(False)
        cache_axes(self.plot)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.lines = pg.PlotCurveItem(pen=pg.mkPen((255, 255, 255, 200), width=1), connect="pairs")
        self.plot.addItem(self.lines)
        # Strips left of the rows and above the columns: where each row/column of S came from.
        self.row_marks = pg.ImageItem(axisOrder="row-major")
        self.col_marks = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.row_marks)
        self.plot.addItem(self.col_marks)
        self.bar = pg.ColorBarItem(
            values=levels,
            colorMap=pg.colormap.get(cmap),
            label=bar_label,
            interactive=False,
            width=12,
        )
        self.bar.setImageItem(self.image, insert_in=self.plot)
        from PySide6.QtWidgets import QGraphicsItem

        self.bar.axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def set(self, matrix: np.ndarray, boundaries: np.ndarray, levels=None, kinds=None) -> None:
        n = matrix.shape[0]
        resized = self.image.image is None or self.image.image.shape != matrix.shape
        self.image.setImage(matrix, autoLevels=False)
        if levels is not None and tuple(self.bar.levels()) != tuple(levels):
            self.bar.setLevels(levels)
        w = max(1.0, n / 40)  # the strips' width, in cells
        if kinds is not None:
            colours = MARK_COLOURS[kinds]
            self.row_marks.setImage(colours[:, None, :], levels=(0, 255))
            self.row_marks.setRect(QRectF(-1.3 * w, 0, w, n))
            self.col_marks.setImage(colours[None, :, :], levels=(0, 255))
            self.col_marks.setRect(QRectF(0, -1.3 * w, n, w))
        if resized:  # frame the matrix once; later snapshots keep the user's zoom
            lo = -1.4 * w if kinds is not None else 0
            self.plot.setRange(xRange=(lo, n), yRange=(lo, n), padding=0.02)
        segs = []
        for b in boundaries:
            segs += [(b, 0), (b, n), (0, b), (n, b)]  # a vertical and a horizontal line
        pts = np.array(segs, dtype=np.float64).reshape(-1, 2) if segs else np.zeros((0, 2))
        self.lines.setData(pts[:, 0], pts[:, 1])


NO_SNAPSHOT = "Waiting for the first snapshot: start a training run."


class AlignmentHeatmaps(QWidget):
    def __init__(
        self,
        state: AppState,
        parent: QWidget | None = None,
        frames: FrameScheduler | None = None,
    ):
        super().__init__(parent)
        self.state = state
        self.view = pg.GraphicsLayoutWidget()
        layout = self.view.ci
        self.teacher = _Matrix(layout, 0, LEFT_TITLES["psd"], (0.0, 1.0), "viridis", "S")
        self.student = _Matrix(
            layout,
            1,
            "Student cosine",  # of the same batch, as the caption says
            (-1.0, 1.0),
            "CET-D1",
            "cosine",
            left_label=False,
        )
        layout.layout.setColumnStretchFactor(0, 1)
        layout.layout.setColumnStretchFactor(1, 1)
        self.student.plot.setXLink(self.teacher.plot)
        self.student.plot.setYLink(self.teacher.plot)
        self.info = QLabel(NO_SNAPSHOT)
        self.info.setTextFormat(Qt.TextFormat.RichText)
        self.info.setWordWrap(True)
        # The caption's space is reserved (two lines, and the thumbnails' height): a caption
        # that appeared on hover resized the plots, and the cell under the cursor changed.
        self._caption_lines(2)
        self.info.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.thumbs = (QLabel(), QLabel())
        for thumb in self.thumbs:
            thumb.setFixedSize(THUMB_HEIGHT * 4 // 3, THUMB_HEIGHT)
        row = QHBoxLayout()
        row.addWidget(self.thumbs[0])
        row.addWidget(self.thumbs[1])
        row.addWidget(self.info, 1)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.view, 1)
        box.addLayout(row)

        self.snapshot: AlignmentSnapshot | None = None
        self.order = np.zeros(0, dtype=np.int64)
        self.kinds = np.zeros(0, dtype=np.int64)  # pair_kinds of the displayed rows/columns
        self.soft = np.zeros((0, 0), np.float32)  # the displayed (class-sorted) matrices
        self.cosine = np.zeros((0, 0), np.float32)
        self._pending = False
        self.frames = frames if frames is not None else FrameScheduler(parent=self)
        self.frames.add(self.refresh, REFRESH_MS)
        state.signals.snapshotChanged.connect(self._snapshot_changed)
        state.signals.currentRunChanged.connect(self._snapshot_changed)
        state.signals.currentRunChanged.connect(self._say_waiting)
        state.signals.runStateChanged.connect(self._say_waiting)
        self.teacher.image.hoverEvent = lambda ev: self._hover(ev, self.teacher.image)
        self.student.image.hoverEvent = lambda ev: self._hover(ev, self.student.image)

    def _say_waiting(self, _rid: int) -> None:
        """Before the current run's first snapshot, say why there is none yet."""
        run = self.state.runs.current_run
        if run is None or run.snapshot is not None:
            return
        self.info.setText(run.starting_text if run.state == "starting" else NO_SNAPSHOT)

    def _caption_lines(self, lines: int) -> None:
        self.info.setFixedHeight(lines * self.info.fontMetrics().lineSpacing() + 6)

    def resizeEvent(self, event) -> None:
        # A narrow view (a 1024-pixel screen) wraps the caption onto a third line: reserve it.
        self._caption_lines(2 if event.size().width() >= CAPTION_WIDE else 3)
        super().resizeEvent(event)

    def _snapshot_changed(self, rid: int) -> None:
        if rid == self.state.runs.current_run_id:
            self._pending = True

    def refresh(self) -> bool:
        """Show the current run's latest snapshot if it changed; True if anything was drawn."""
        if not self._pending or not self.isVisible():
            return False
        self._pending = False
        run = self.state.runs.current_run
        snap = run.snapshot if run is not None else None
        if snap is None:
            return False
        self.snapshot = snap
        self.teacher.plot.setTitle(LEFT_TITLES.get(run.method, LEFT_TITLES["psd"]), size="9pt")
        self.order = np.argsort(snap.labels, kind="stable")
        self.soft = snap.soft[np.ix_(self.order, self.order)]
        self.cosine = snap.student[np.ix_(self.order, self.order)]
        sorted_labels = snap.labels[self.order]
        boundaries = np.flatnonzero(np.diff(sorted_labels)) + 1
        self.kinds = pair_kinds(snap.labels, snap.annotated)[self.order]
        self.teacher.set(self.soft, boundaries, kinds=self.kinds)
        m = cosine_range(self.cosine)
        self.student.set(self.cosine, boundaries, (-m, m), kinds=self.kinds)
        counts = np.bincount(self.kinds, minlength=3)
        n_unlab = counts[UNLABELLED_PAIR]
        self.caption = (
            f"Batch of {len(snap.labels)} pairs, epoch {snap.epoch}, step "
            f"{snap.global_step}: {counts[FROM_LABEL]} from labels (green), "
            f"{counts[FROM_TEACHER]} from the teacher (orange)"
            + (f", {n_unlab} unlabelled (grey)." if n_unlab else ".")
        )
        self.info.setText(self.caption + " Hover a cell to see its two clips.")
        return True

    def _hover(self, ev, image: pg.ImageItem) -> None:
        if ev.isExit() or self.snapshot is None or self.soft.size == 0:
            return
        pos = ev.pos()
        col, row = int(pos.x()), int(pos.y())
        n = self.soft.shape[0]
        if not (0 <= row < n and 0 <= col < n):
            return
        self.show_cell(row, col)

    def show_cell(self, row: int, col: int) -> str:
        """Describe displayed cell (row, col): both clips, their classes and both values."""
        snap = self.snapshot
        assert snap is not None
        a, v = self.order[row], self.order[col]
        ia, iv = int(snap.indices[a]), int(snap.indices[v])
        s = self.state
        la, lv = int(snap.labels[a]), int(snap.labels[v])
        text = (
            f"audio <b>{s.catalog.item_name('train', ia)}</b> ({s.catalog.class_name(la)}, "
            f"{KIND_NAMES[self.kinds[row]]}) × visual "
            f"<b>{s.catalog.item_name('train', iv)}</b> ({s.catalog.class_name(lv)}, "
            f"{KIND_NAMES[self.kinds[col]]}) — "
            f"S = {self.soft[row, col]:.3f}, cosine = {self.cosine[row, col]:.3f}"
        )
        self.info.setText(text)
        for label, idx in zip(self.thumbs, (ia, iv), strict=True):
            path = s.catalog.item_path("train", idx)
            image = s.catalog.thumbnails.get(path) if path else None
            if image is not None:
                from PySide6.QtGui import QPixmap

                label.setPixmap(QPixmap.fromImage(image).scaledToHeight(THUMB_HEIGHT))
            else:
                label.clear()
        return text

    def plots(self) -> dict[str, QWidget]:
        return {"Alignment heatmaps": self.view}
