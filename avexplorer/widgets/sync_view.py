"""Sync view: for the selected clip (the current query when it is a dataset item or a video
file, else the query's top result), the cosine of every audio segment with every visual segment
under the current model (coloured over the clip's own range of cosines).

Rows are the sound's segments (its spectrogram runs down the left), columns the picture's (one
frame per segment along the bottom); a bright diagonal means sound and picture agree in time, a
bright block off the diagonal that the sound of one moment matches the picture of another.
Clicking a cell plays the clip's sound from that row's moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from avexplorer.state.app_state import AppState
from avexplorer.state.time_axis import NO_MODEL_STRIPS, ClipPictures, ClipSegments, TimeState
from avexplorer.widgets.audio_player import AudioPlayer

SPEC_WIDTH = 1.0  # width of the spectrogram strip, in the plot's units


@dataclass(frozen=True)
class SyncData:
    """What the view shows for one clip."""

    name: str
    path: str | None
    matrix: np.ndarray  # [Ta, Tv] cosine, rows audio segments, columns visual segments
    seconds: float  # segment length
    duration: float | None

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        """(audio segment, visual segment) under a point in seconds (x: picture, y: sound)."""
        a, v = int(y // self.seconds), int(x // self.seconds)
        if 0 <= a < self.matrix.shape[0] and 0 <= v < self.matrix.shape[1] and x >= 0 and y >= 0:
            return a, v
        return None


class SyncView(QWidget):
    def __init__(self, state: AppState, time_state: TimeState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.time = state, time_state
        self.player = AudioPlayer(self, state)
        self.data: SyncData | None = None

        self.title = QLabel()
        self.title.setWordWrap(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.plots = pg.GraphicsLayoutWidget()
        self.spec_plot = self.plots.addPlot(row=0, col=0)
        self.matrix_plot = self.plots.addPlot(row=0, col=1)
        self.frames_plot = self.plots.addPlot(row=1, col=1)
        self.plots.ci.layout.setColumnStretchFactor(1, 5)
        self.plots.ci.layout.setRowStretchFactor(0, 5)
        for p in (self.spec_plot, self.matrix_plot, self.frames_plot):
            p.setMenuEnabled(False)
            p.setMouseEnabled(x=False, y=False)
            p.hideButtons()
            p.invertY(True)  # time runs down the rows, as in a matrix
        self.spec_plot.setYLink(self.matrix_plot)
        self.frames_plot.setXLink(self.matrix_plot)
        self.spec_plot.setLabel("left", "sound (s)")
        self.spec_plot.hideAxis("bottom")
        self.spec_plot.setFixedWidth(110)
        self.frames_plot.setLabel("bottom", "picture (s)")
        self.frames_plot.hideAxis("left")
        self.frames_plot.setFixedHeight(90)
        self.matrix_plot.hideAxis("left")
        self.matrix_plot.hideAxis("bottom")
        self.matrix_image = pg.ImageItem()
        self.matrix_image.setColorMap(pg.colormap.get("viridis"))
        self.matrix_plot.addItem(self.matrix_image)
        self.colorbar = pg.ColorBarItem(
            colorMap=pg.colormap.get("viridis"),
            values=(-1, 1),
            interactive=False,
            width=12,
            label="cosine",
        )
        self.colorbar.setImageItem(self.matrix_image, insert_in=self.matrix_plot)
        self.spec_image = pg.ImageItem()
        self.spec_image.setColorMap(pg.colormap.get("magma"))
        self.spec_plot.addItem(self.spec_image)
        self.frame_items: list[pg.ImageItem] = []
        self.matrix_plot.scene().sigMouseClicked.connect(self._clicked)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        # With nothing to show, a sentence in the plots' place: empty axes ran from -400 to 400
        # (x0.001) and said nothing.
        self.empty = QLabel()
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet("color: #555; font-size: 11pt; padding: 20px;")
        layout.addWidget(self.title)
        layout.addWidget(self.plots, 1)
        layout.addWidget(self.empty, 1)
        layout.addWidget(self.status)

        state.signals.queryChanged.connect(self.refresh)
        state.signals.modelChanged.connect(self.refresh)
        state.signals.resultsChanged.connect(self.refresh)
        time_state.segmentsChanged.connect(self.refresh)
        time_state.picturesChanged.connect(self._pictures_arrived)
        self.refresh()

    # ----- data --------------------------------------------------------------------------------
    def clip(self) -> tuple[str, str | None, ClipSegments | str | None]:
        """(name, path, segments or why not or None while pending) of the clip to show: the query
        when it is one clip with sound and picture, else the query's top result."""
        q = self.state.retrieval.query
        if q is None:
            return "", None, "Pick a clip (a dataset item, or a video file as the query)."
        if q.split is not None and q.index is not None:
            return q.name, q.path, self.time.item_segments(q.split, q.index)
        if q.path is not None and q.features is not None and len(q.features) == 2:
            return q.name, q.path, self.time.path_segments(q.path)
        # a sound, an image or a selection is not one clip to sync: show the top result
        r = self.state.retrieval.results
        if r is None or not len(r.indices):
            return q.name, q.path, "This query is not one clip with sound and picture."
        top = int(r.indices[0])
        name = f"{self.state.catalog.item_name('test', top)} (top result of {q.name})"
        return name, self.state.catalog.item_path("test", top), self.time.item_segments("test", top)

    def sync_data(self) -> SyncData | str:
        """The view's data, or the sentence it shows instead."""
        name, path, segs = self.clip()
        if segs is None:
            return f"Encoding the segments of {name}…"
        if isinstance(segs, str):
            return segs
        matrix = self.time.sync_matrix(segs)
        if matrix is None:
            if self.state.retrieval.gallery is not None:  # embeddings given without a model
                return NO_MODEL_STRIPS
            return "Train a model or load a checkpoint to compare sound and picture over time."
        return SyncData(name, path, matrix, segs.seconds, segs.duration)

    # ----- rendering ---------------------------------------------------------------------------
    def refresh(self) -> None:
        data = self.sync_data()
        self.plots.setVisible(not isinstance(data, str))
        self.empty.setVisible(isinstance(data, str))
        self.title.setVisible(not isinstance(data, str))
        if isinstance(data, str):
            self.data = None
            self.empty.setText(data)
            self.title.setText(data)
            self.matrix_image.clear()
            self.spec_image.clear()
            self._set_frames([])
            return
        self.data = data
        ta, tv = data.matrix.shape
        s = data.seconds
        diag = float(np.mean(np.diag(data.matrix))) if ta == tv else float("nan")
        off = float(data.matrix[~np.eye(ta, tv, dtype=bool)].mean()) if ta * tv > 1 else diag
        self.title.setText(
            f"<b>{data.name}</b>: {ta} sound × {tv} picture segments of {s:g} s · mean cosine on "
            f"the diagonal {diag:.3f}, off it {off:.3f} · click a cell to play from that moment"
        )
        # the clip's own range: a sync pattern is a contrast within one clip
        lo, hi = float(data.matrix.min()), float(data.matrix.max())
        self.matrix_image.setImage(data.matrix)
        self.colorbar.setLevels((lo, hi if hi > lo else lo + 1e-3))
        self.matrix_image.setRect(0, 0, tv * s, ta * s)
        self.matrix_plot.setRange(xRange=(0, tv * s), yRange=(0, ta * s), padding=0)
        self.spec_plot.setXRange(0, SPEC_WIDTH, padding=0)
        self.frames_plot.setYRange(0, 1, padding=0)
        if data.path is not None and Path(data.path).exists():
            pictures = self.time.clip_pictures(data.path, s, max(ta, tv))
            if pictures is not None:
                self._show_pictures(pictures)

    def _pictures_arrived(self, path: str) -> None:
        if self.data is not None and self.data.path == path:
            self._show_pictures(self.time.pictures[path])

    def _show_pictures(self, pictures: ClipPictures) -> None:
        data = self.data
        assert data is not None
        if pictures.spectrogram is not None:
            spec = pictures.spectrogram[::-1].T  # [time, mel]: time down, low pitch left
            self.spec_image.setImage(spec, levels=(spec.max() - 70, spec.max()))
            self.spec_image.setRect(0, 0, SPEC_WIDTH, len(spec) * 0.01)  # 10 ms hops
        else:
            self.spec_image.clear()
        self._set_frames(pictures.frames[: data.matrix.shape[1]])

    def _set_frames(self, frames: list[np.ndarray]) -> None:
        for item in self.frame_items:
            self.frames_plot.removeItem(item)
        self.frame_items = []
        if self.data is None:
            return
        s = self.data.seconds
        for i, frame in enumerate(frames):
            item = pg.ImageItem(frame)
            item.setRect(i * s + 0.05 * s, 0.05, 0.9 * s, 0.9)
            self.frames_plot.addItem(item)
            self.frame_items.append(item)

    # ----- intents -----------------------------------------------------------------------------
    def _clicked(self, event) -> None:
        if self.data is None:
            return
        vb = self.matrix_plot.getViewBox()
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        point: QPointF = vb.mapSceneToView(event.scenePos())
        self.play_cell_at(point.x(), point.y())

    def play_cell_at(self, x: float, y: float) -> str:
        """Play the clip's sound from the moment of the cell under (x, y) (seconds)."""
        data = self.data
        cell = data.cell_at(x, y) if data is not None else None
        if data is None or cell is None:
            return ""
        a, v = cell
        start = a * data.seconds
        text = self.player.play(data.path, start)
        text += (
            f" · sound {start:g}-{start + data.seconds:g} s vs picture {v * data.seconds:g}-"
            f"{(v + 1) * data.seconds:g} s: cosine {data.matrix[a, v]:.3f}"
        )
        self.status.setText(text)
        self.state.signals.message.emit(text)
        return text

    def plots_for_export(self) -> dict[str, QWidget]:
        return {"Sync view": self.plots}
