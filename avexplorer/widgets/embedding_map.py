"""The embedding map: audio and visual test embeddings projected together into 2-D.

Audio items are circles, visual items triangles, coloured by class (or by the rank of each item's
true cross-modal match); optional lines join each clip's audio to its visual. Hovering shows the
clip's first frame, clicking makes the item the retrieval query. An epoch slider walks through the
layouts of past epochs; each layout was Procrustes-aligned to the previous epoch's, so the cloud
moves rather than jumps. Projections are computed by workers; this widget only draws.

Selections: the Lasso and Box tools (or a drag with Shift or Ctrl held) select the points inside
the outline (Shift adds, Ctrl subtracts; ``map_selection.py``), a click on a class in the legend
selects the class, Esc clears. The selection is the state's; the map draws the points outside it
in grey, under the selected ones.

Performance with 100k+ points: the points are one ``PointCloud`` item (``point_cloud.py``) with
a sprite per (modality, colour), culled and de-duplicated per pixel at each paint, and no
per-point objects; hover and click find the point under the cursor with the layout's KD-tree.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QBrush, QColor, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QLabel,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from avexplorer.projections import Layout
from avexplorer.state.app_state import AppState
from avexplorer.state.catalog import dataset_name
from avexplorer.state.embeddings import PROJECTIONS
from avexplorer.widgets.flow_row import FlowRow, group
from avexplorer.widgets.map_selection import TOOLS, SelectingViewBox, mode_of
from avexplorer.widgets.point_cloud import PointCloud, Sprite
from avexplorer.widgets.training_plots import cache_axes
from core.exploration.selection import PolygonIndex

RANK_EDGES = (1, 2, 4, 11, 51, 201, 1001, 5001, 20001)  # bins 1, 2-3, 4-10, 11-50, ...
RANK_COLOURS = len(RANK_EDGES)  # the plasma lookup table has one colour per possible bin


def rank_bins(n: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """Bin edges and labels for ranks 1..n: the fixed edges below n, the last bin ending at n
    (120 items: 1, 2–3, 4–10, 11–50, 51–120; never a "201–1000" bin no item can fall in)."""
    edges = [e for e in RANK_EDGES if e <= n]
    labels = []
    for lo, hi in zip(edges, [*edges[1:], n + 1], strict=True):
        labels.append(str(lo) if hi - 1 == lo else f"{lo}–{hi - 1}")
    return np.array(edges), tuple(labels)


HIT_RADIUS_PX = 6  # hover and click pick the nearest point within this many pixels
GREY = QColor(205, 205, 205)  # points outside the selection
TOOL_TIPS = {
    "pan": "Drag to pan, wheel to zoom (Shift-drag lassoes to add, Ctrl-drag to subtract)",
    "lasso": "Draw around points to select them (Shift adds, Ctrl subtracts, Esc clears)",
    "box": "Drag a box to select points (Shift adds, Ctrl subtracts, Esc clears)",
}

NO_EMBEDDINGS = "Test embeddings: train a model or load a checkpoint"


class EmbeddingMap(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.method_box = QComboBox()
        for method, name in PROJECTIONS.items():
            self.method_box.addItem(name, method)
        self.method_box.setCurrentIndex(self.method_box.findData(state.embeddings.projection))
        self.method_box.setToolTip(
            "PCA is immediate; UMAP and t-SNE are computed in the background on request "
            "(t-SNE takes longer and keeps each clip's pairs and neighbours closer)"
        )
        self.color_box = QComboBox()
        self.color_box.addItems(["By class", "By rank of true match"])
        self.color_box.setToolTip(
            "Colour the points by class, or by the rank of each item's true cross-modal match"
        )
        # The toolbar must fit the map's share of a 1280-pixel window: boxes and labels shrink.
        self.color_box.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.color_box.setMinimumContentsLength(8)
        self.lines_box = QCheckBox("Join pairs")
        self.lines_box.setToolTip("Draw a line from each clip's audio to its visual embedding")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setEnabled(False)
        self.epoch_label = QLabel("no embeddings yet")
        self.epoch_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.epoch_label.setMinimumWidth(60)
        self.legend_label = QLabel("● audio   ▲ visual")
        self.legend_label.setWordWrap(True)
        self.legend_label.setTextFormat(Qt.TextFormat.RichText)
        self.legend_label.setToolTip("Click a class to select it (Shift adds, Ctrl subtracts)")
        self.legend_label.linkActivated.connect(self._legend_clicked)

        self.tools = QButtonGroup(self)
        buttons = []
        for i, tool in enumerate(TOOLS):
            button = QToolButton()
            button.setText(tool.title())
            button.setCheckable(True)
            button.setChecked(i == 0)
            button.setToolTip(TOOL_TIPS[tool])
            self.tools.addButton(button, i)
            buttons.append(button)
        self.selection_label = QLabel("")
        self.slider_label = QLabel("Epoch")
        # On a narrow map (a 1024-pixel screen) the toolbar wraps onto a second line.
        self.toolbar = QWidget()
        top = FlowRow(self.toolbar)
        top.addWidget(group(*buttons, self.selection_label))
        top.addWidget(group(self.method_box, self.color_box, self.lines_box))
        top.addWidget(group(self.slider_label, self.slider, self.epoch_label, stretch=1))

        self.viewbox = SelectingViewBox()
        self.plot = pg.PlotWidget(viewBox=self.viewbox)
        self.plot.setAspectLocked(True)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        cache_axes(self.plot.getPlotItem())
        self.plot.setTitle(NO_EMBEDDINGS, size="10pt")
        self.lines = pg.PlotCurveItem(pen=pg.mkPen((150, 150, 150, 70), width=1), connect="pairs")
        self.lines.setVisible(False)
        # Audio rows then visual rows, as in a Layout; visual triangles are drawn on top.
        self.points = PointCloud()
        self.marks = pg.ScatterPlotItem(pxMode=True, brush=None)
        for item in (self.lines, self.points, self.marks):
            self.plot.addItem(item)
        scene = self.plot.scene()
        scene.sigMouseMoved.connect(self._mouse_moved)
        scene.sigMouseClicked.connect(self._mouse_clicked)

        self.tip = QLabel(self.plot)
        self.tip.setStyleSheet(
            "background: rgba(30,30,30,220); color: white; border-radius: 4px; padding: 4px;"
        )
        self.tip.setTextFormat(Qt.TextFormat.RichText)
        self.tip.hide()

        # The plot with its legend: what File > Export plot as PNG > Embedding map renders.
        self.canvas = QWidget()
        self.canvas.setStyleSheet("background: white;")
        canvas = QVBoxLayout(self.canvas)
        canvas.setContentsMargins(0, 0, 0, 2)
        canvas.addWidget(self.plot, 1)
        canvas.addWidget(self.legend_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.canvas, 1)

        self.run_id: int | None = None
        self.layout_shown: Layout | None = None
        self._epochs: list[int] = []
        self._follow = True  # slider tracks the newest epoch until the user moves it
        self._class_brushes: list[QBrush] = []
        # Rank 1 (the true match first) is bright yellow, bad ranks dark purple.
        lut = pg.colormap.get("plasma").getLookupTable(0.95, 0.1, RANK_COLOURS, alpha=False)
        self._rank_brushes = [QBrush(QColor(*map(int, rgb))) for rgb in lut]
        self._hover: tuple[str, int] | None = None
        self._lasso_index: tuple[Layout, PolygonIndex] | None = None
        self._drawn: Layout | None = None  # the layout whose positions the point cloud holds

        self.method_box.currentIndexChanged.connect(
            lambda i: state.embeddings.set_projection(self.method_box.itemData(i))
        )
        self.color_box.currentIndexChanged.connect(lambda _i: self.redraw())
        self.lines_box.toggled.connect(self._lines_toggled)
        self.slider.valueChanged.connect(self._slider_moved)
        state.signals.layoutReady.connect(self._layout_ready)
        state.signals.ranksReady.connect(self._ranks_ready)
        state.signals.datasetChanged.connect(self._dataset_changed)
        state.signals.currentRunChanged.connect(self._run_changed)
        state.signals.currentRunChanged.connect(self._say_starting)
        state.signals.runStateChanged.connect(self._say_starting)
        state.signals.resultsChanged.connect(self._mark_query)
        state.signals.queryChanged.connect(self._mark_query)
        state.signals.projectionChanged.connect(self._projection_changed)
        state.signals.selectionChanged.connect(self.redraw)
        self.tools.idClicked.connect(lambda i: self.viewbox.set_tool(TOOLS[i]))
        self.viewbox.selected.connect(self.select_polygon)
        clear = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        clear.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        clear.activated.connect(state.selection.clear_selection)

    @property
    def method(self) -> str:
        return self.state.embeddings.projection

    # ----- state changes -----------------------------------------------------------------------
    def _dataset_changed(self) -> None:
        self._class_brushes = [QBrush(c) for c in self.state.catalog.colors]
        self.run_id, self.layout_shown, self._epochs = None, None, []
        self._drawn = None
        self.points.clear()
        self.lines.setData([], [])
        self.marks.clear()
        self.slider.setRange(0, 0)
        self.slider.setEnabled(False)
        self.epoch_label.setText("no embeddings yet")
        self.plot.setTitle(NO_EMBEDDINGS, size="10pt")  # not the last dataset's run

    def _say_starting(self, _rid: int) -> None:
        """While the current run starts and the map has nothing of it yet, the title says so."""
        run = self.state.runs.current_run
        if (
            run is not None
            and run.id == self.run_id
            and run.state == "starting"
            and not self._embedded_epochs()
        ):
            self.plot.setTitle(run.starting_text, size="10pt")

    def _run_changed(self, rid: int) -> None:
        if rid in self.state.runs and rid != self.run_id:
            self.run_id = rid
            self._follow = True
            self._refresh_epochs()

    def _layout_ready(self, rid: int, epoch: int, method: str) -> None:
        if rid != self.run_id and (rid == self.state.runs.current_run_id or rid < 0):
            self.run_id = rid
            self._follow = True
        # A PCA layout arriving while the map shows UMAP or t-SNE is the sign of new embeddings:
        # the map then asks for its own method's layout of them.
        if rid == self.run_id and (
            method == self.method or (epoch, self.method) not in self._layouts()
        ):
            self._refresh_epochs(show=epoch if self._follow or epoch == self._wanted() else None)

    def _ranks_ready(self, rid: int, epoch: int) -> None:
        layout = self.layout_shown
        if rid == self.run_id and layout is not None and layout.epoch == epoch:
            self.redraw()  # colours by rank, the legend and the hover text now have them

    def _ranks(self) -> np.ndarray | None:
        """The shown layout's match ranks (computed after it is drawn), or None until then."""
        layout = self.layout_shown
        if layout is None or self.run_id is None:
            return None
        ranks = self.state.embeddings.ranks_for(self.run_id, layout.epoch)
        return ranks if ranks is not None else layout.ranks

    def drawn_current(self) -> bool:
        """Whether the map shows the layout the user asks for (the slider's epoch in the chosen
        projection), its points set (``AppHandle.save_map`` waits for this)."""
        layout = self.layout_shown
        return (
            layout is not None
            and self._drawn is layout
            and layout.method == self.method
            and layout.epoch == self._wanted()
        )

    def _wanted(self) -> int | None:
        epochs = self._embedded_epochs()
        return epochs[min(self.slider.value(), len(epochs) - 1)] if epochs else None

    def _embedded_epochs(self) -> list[int]:
        return (
            sorted(self.state.embeddings.embeddings_for(self.run_id))
            if self.run_id is not None
            else []
        )

    def _refresh_epochs(self, show: int | None = None) -> None:
        """Point the slider at the embedded epochs; show ``show`` (or the slider's epoch)."""
        epochs = self._embedded_epochs()
        self._epochs = epochs
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(len(epochs) - 1, 0))
        self.slider.setEnabled(len(epochs) > 1)
        # One epoch (a loaded checkpoint): nothing to walk through, so no slider.
        self.slider.setVisible(len(epochs) > 1)
        self.slider_label.setVisible(len(epochs) > 1)
        if show is not None and show in epochs:
            self.slider.setValue(epochs.index(show))
        elif self._follow and epochs:
            self.slider.setValue(len(epochs) - 1)
        self.slider.blockSignals(False)
        self._show_slider_epoch()

    def _slider_moved(self, _value: int) -> None:
        self._follow = self.slider.value() == self.slider.maximum()
        self._show_slider_epoch()

    def _projection_changed(self, method: str) -> None:
        self.method_box.blockSignals(True)
        self.method_box.setCurrentIndex(self.method_box.findData(method))
        self.method_box.blockSignals(False)
        self._show_slider_epoch()

    def _show_slider_epoch(self) -> None:
        if not self._epochs or self.run_id is None:
            return
        epoch = self._epochs[min(self.slider.value(), len(self._epochs) - 1)]
        layouts = self._layouts()
        layout = layouts.get((epoch, self.method))
        name = PROJECTIONS[self.method]
        self.epoch_label.setText(f"{epoch} ({name})")
        if layout is None:
            self.epoch_label.setText(f"{epoch}: computing {name}…")
            self.state.signals.layoutRequested.emit(self.run_id, epoch, self.method)
            return
        self.show_layout(layout)

    def _layouts(self) -> dict:
        return self.state.embeddings.layouts_for(self.run_id) if self.run_id is not None else {}

    def _lines_toggled(self, on: bool) -> None:
        self.lines.setVisible(on)
        self.redraw()

    # ----- drawing -----------------------------------------------------------------------------
    def show_layout(self, layout: Layout) -> None:
        self.layout_shown = layout
        self.redraw()
        run = self.state.runs.get(self.run_id) if self.run_id is not None else None
        name = run.name if run is not None else "checkpoint"
        what = f"test embeddings after epoch {layout.epoch}"
        emb = (
            self.state.embeddings.embeddings_for(self.run_id).get(layout.epoch)
            if run is None
            else None
        )
        if emb is not None and emb.model is None and emb.checkpoint is None:
            # Embeddings handed over as they are (avexplorer.show): no model, no epoch.
            name, what = dataset_name(self.state.catalog.dataset), "embeddings as given"
        self.plot.setTitle(f"{name}: {what} ({PROJECTIONS[layout.method]})", size="10pt")

    def redraw(self) -> None:
        layout, data = self.layout_shown, self.state.catalog.dataset
        if layout is None or data is None:
            return
        n = len(layout.coords) // 2
        if n != len(data.test):
            return  # a layout of another dataset
        labels = data.test.labels
        if self.color_box.currentIndex() == 0:
            brushes, colour = self._class_brushes, labels
            self._legend(
                "● audio   ▲ visual   "
                + " ".join(
                    f"<span style='white-space:nowrap'><span style='color:{c.name()}'>■</span>"
                    f"&nbsp;<a href='class:{i}' style='color:black; text-decoration:none'>"
                    f"{html.escape(name)}</a></span>"
                    for i, (c, name) in enumerate(
                        zip(self.state.catalog.colors, data.class_names, strict=True)
                    )
                )
            )
        elif (ranks := self._ranks()) is None:  # drawn before its ranks: grey until they come
            brushes, colour = [QBrush(GREY)], np.zeros(n, np.int64)
            self._legend("● audio   ▲ visual   colour = rank of the true match: computing…")
        else:
            edges, names = rank_bins(n)
            bins = np.searchsorted(edges, ranks, side="right") - 1
            brushes, colour = self._rank_brushes, np.clip(bins, 0, len(names) - 1)
            self._legend(
                "● audio   ▲ visual   colour = rank of the true match: "
                + "  ".join(
                    f"<span style='color:{b.color().name()}'>■</span>&nbsp;{t}"
                    for b, t in zip(self._rank_brushes, names, strict=False)
                )
            )
        # Sprites: audio circles for each colour, then visual triangles for each colour, then
        # the grey circle and triangle of points outside the selection.
        k = len(brushes)
        grey = QBrush(GREY)
        sprites = [Sprite("o", 7, b) for b in brushes] + [Sprite("t", 8, b) for b in brushes]
        sprites += [Sprite("o", 7, grey), Sprite("t", 8, grey)]
        if len(colour) == n:  # one colour per clip (class): the same for both modalities
            style = np.concatenate([colour, colour + k])
        else:  # one per item (rank)
            style = np.concatenate([colour[:n], colour[n:] + k])
        sel = self.state.selection.current
        order = None
        if sel is not None and len(sel) == n:
            style[:n][~sel.audio] = 2 * k
            style[n:][~sel.visual] = 2 * k + 1
            # The grey points first, so the selected ones are drawn over them.
            chosen = sel.points()
            order = np.concatenate([np.flatnonzero(~chosen), np.flatnonzero(chosen)])
            self.selection_label.setText(f"{sel.count} selected")
        else:
            self.selection_label.setText("")
        if self._drawn is not layout:  # new positions; else only colours and order change
            self.points.set_data(layout.coords, style, sprites)
            self._drawn = layout
        self.points.set_style(style, sprites, order)
        a, v = layout.coords[:n], layout.coords[n:]
        if self.lines_box.isChecked():
            xy = np.empty((2 * n, 2), dtype=np.float32)
            xy[0::2], xy[1::2] = a, v
            self.lines.setData(xy[:, 0], xy[:, 1])
        self._mark_query()

    def _mark_query(self) -> None:
        """Ring the query (when it is a test item) and its top-k results (green hit, red miss)."""
        layout, r = self.layout_shown, self.state.retrieval.results
        q = self.state.retrieval.query
        if layout is None:
            return
        n = len(layout.coords) // 2
        spots = []
        if q is not None and q.split == "test" and q.index is not None and q.index < n:
            off = 0 if self.state.retrieval.query_modality == "audio" else n
            spots.append(
                {
                    "pos": layout.coords[off + q.index],
                    "size": 20,
                    "symbol": "o",
                    "pen": pg.mkPen("k", width=3),
                    "brush": None,
                }
            )
        if r is not None:
            off = n if r.modality == "audio" else 0  # results are of the other modality
            hits = r.hits if r.hits is not None else [None] * len(r.indices)
            for i, hit in zip(r.indices, hits, strict=True):
                if i < n:
                    # A query without a label (a file) has results but no hits or misses.
                    color = (
                        (120, 120, 120) if hit is None else (40, 170, 60) if hit else (220, 40, 40)
                    )
                    spots.append(
                        {
                            "pos": layout.coords[off + int(i)],
                            "size": 14,
                            "symbol": "o",
                            "pen": pg.mkPen(color, width=2),
                            "brush": None,
                        }
                    )
        self.marks.setData(spots)

    def _legend(self, text: str) -> None:
        if text != self.legend_label.text():  # a selection redraws the points, not the legend
            self.legend_label.setText(text)

    # ----- selection -------------------------------------------------------------------------
    def select_polygon(self, polygon: np.ndarray, mode: str = "replace") -> None:
        """Select the points of the shown layout inside ``polygon`` (data coordinates)."""
        layout = self.layout_shown
        if layout is None or self.state.catalog.dataset is None:
            return
        if len(layout.coords) != 2 * len(self.state.catalog.dataset.test):
            return
        if self._lasso_index is None or self._lasso_index[0] is not layout:
            self._lasso_index = (layout, PolygonIndex(layout.coords))  # once per layout shown
        self.state.selection.select_points(self._lasso_index[1].inside(polygon), mode)

    def _legend_clicked(self, link: str) -> None:
        if link.startswith("class:"):
            mode = mode_of(QApplication.keyboardModifiers())
            self.state.selection.select_class(int(link.split(":", 1)[1]), mode)

    # ----- interaction -------------------------------------------------------------------------
    def item_at(self, scene_pos) -> tuple[str, int] | None:
        """(modality, test index) of the point under a scene position, or None."""
        layout = self.layout_shown
        if layout is None or not len(self.points):
            return None
        vb = self.plot.getViewBox()
        if not vb.sceneBoundingRect().contains(scene_pos):
            return None
        at = vb.mapSceneToView(scene_pos)
        px = max(vb.viewPixelSize())  # data units per pixel (the aspect is locked)
        j = layout.nearest(at.x(), at.y(), radius=HIT_RADIUS_PX * px)
        if j is None:
            return None
        n = len(layout.coords) // 2
        return ("audio", j) if j < n else ("visual", j - n)

    def _mouse_clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        hit = self.item_at(ev.scenePos())
        if hit is not None:
            ev.accept()
            modality, index = hit
            self.state.retrieval.set_item_query("test", index, modality)

    def _mouse_moved(self, scene_pos) -> None:
        hit = self.item_at(scene_pos) if self.state.catalog.dataset is not None else None
        if hit is None:
            if self._hover is not None:
                self._hover = None
                self.tip.hide()
                self._thumb_label().hide()
            return
        modality, i = hit
        at = self.plot.mapFromScene(scene_pos)
        if hit != self._hover:
            self._hover = hit
            self.tip.setText(self.describe(modality, i))
        path = self.state.catalog.item_path("test", i)
        image = self.state.catalog.thumbnails.get(path) if path else None
        self._place_tip(at, image)

    def describe(self, modality: str, i: int) -> str:
        """Hover text of test item i: name, modality, class and the rank of its true match."""
        c = self.state.catalog
        label = int(c.dataset.test.labels[i])  # type: ignore[union-attr]
        rank = ""
        ranks = self._ranks()
        if self.layout_shown is not None and ranks is not None:
            n = len(self.layout_shown.coords) // 2
            r = ranks[(0 if modality == "audio" else n) + i]
            rank = f"<br>true match at rank {r}"
        elif self.layout_shown is not None:
            rank = "<br>true match: rank being computed"
        return f"<b>{c.item_name('test', i)}</b><br>{modality} · {c.class_name(label)}{rank}"

    def _place_tip(self, at, image) -> None:
        """Show the hover text (and the clip's first frame above it) next to the cursor."""
        thumb = self._thumb_label()
        if image is not None:
            thumb.setPixmap(QPixmap.fromImage(image).scaledToHeight(72))
            thumb.adjustSize()
        thumb.setVisible(image is not None)
        self.tip.adjustSize()
        x = min(at.x() + 16, self.plot.width() - self.tip.width() - 4)
        y = min(
            at.y() + 16 + (thumb.height() if image is not None else 0),
            self.plot.height() - self.tip.height() - 4,
        )
        self.tip.move(int(max(x, 0)), int(max(y, 0)))
        self.tip.show()
        self.tip.raise_()
        if image is not None:
            thumb.move(self.tip.x(), max(self.tip.y() - thumb.height() - 2, 0))
            thumb.raise_()

    def _thumb_label(self) -> QLabel:
        if not hasattr(self, "_thumb"):
            self._thumb = QLabel(self.plot)
            self._thumb.setStyleSheet("border: 2px solid rgba(30,30,30,220);")
            self._thumb.hide()
        return self._thumb

    def point_position(self, modality: str, index: int) -> QPoint:
        """Widget coordinates (in the plot's viewport) of a drawn point (tests click it)."""
        assert self.layout_shown is not None
        n = len(self.layout_shown.coords) // 2
        x, y = self.layout_shown.coords[(0 if modality == "audio" else n) + index]
        scene = self.plot.getViewBox().mapViewToScene(QPointF(float(x), float(y)))
        return self.plot.mapFromScene(scene)

    def plots(self) -> dict[str, QWidget]:
        return {"Embedding map": self.canvas}
