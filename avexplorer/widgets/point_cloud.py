"""A scatter item for 100k+ points: one sprite per style, culled and de-duplicated per pixel.

pyqtgraph's ``ScatterPlotItem`` already draws pixel-sized symbols from a sprite atlas with one
``QPainter.drawPixmapFragments`` call, but it hands Qt every point on every frame: at 200k points
that call alone is ~80 ms on a loaded two-core machine, and ``setData`` builds per-point records
(seconds). Here the data are plain arrays (positions and a style index per point), and each paint

1. maps the positions to device pixels with the painter's transform (numpy),
2. drops the points outside the viewport,
3. keeps one point per device pixel (the one drawn last, i.e. the one that would be on top) -
   points sharing a pixel draw the same sprite at the same place, so the picture is unchanged -
4. draws the survivors in their original order with one ``drawPixmapFragments`` call.

A zoomed-out cloud of 200k points then costs a few tens of thousands of fragments; zoomed in, the
culling does the work. Hit tests are the caller's business (the map uses a KD-tree on the data
coordinates), so the item never creates per-point objects.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.graphicsItems.ScatterPlotItem import renderSymbol
from pyqtgraph.Qt import internals
from PySide6.QtCore import QRectF
from PySide6.QtGui import QBrush, QPainter, QPen, QPixmap

EXACT_LIMIT = 50_000  # points in view up to which every device pixel keeps its own point


class Sprite:
    """The style of one group of points: symbol, size in pixels, brush and pen."""

    def __init__(self, symbol: str, size: float, brush: QBrush, pen: QPen | None = None):
        self.symbol, self.size, self.brush = symbol, size, brush
        self.pen = pen if pen is not None else QPen(pg.mkPen(None))


class PointCloud(pg.GraphicsObject):
    def __init__(self) -> None:
        super().__init__()
        self.xy = np.zeros((0, 2), np.float64)
        self.style = np.zeros(0, np.int32)
        self.order: np.ndarray | None = None  # drawing order (None: as given); last on top
        self._sprites: list[Sprite] = []
        self._atlas: QPixmap | None = None
        self._atlas_dpr = 0.0
        self._rects = np.zeros((0, 4), np.float64)  # per sprite: sx, sy, sw, sh in the atlas
        self._frags = internals.PrimitiveArray(QPainter.PixmapFragment, 10)
        self._occupied = np.zeros(0, np.int32)
        self._bounds = QRectF()
        self._pad = 0.0  # half the largest sprite, in pixels
        self.drawn = 0  # fragments drawn by the last paint (the benchmark reports it)

    # ----- data --------------------------------------------------------------------------------
    def set_data(self, xy: np.ndarray, style: np.ndarray, sprites: list[Sprite]) -> None:
        """Positions [M, 2], the sprite index of each point [M], and the sprites.

        Points are drawn in order: a later point covers an earlier one.
        """
        self.prepareGeometryChange()
        self.xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        self.style = np.asarray(style, dtype=np.int32).reshape(-1)
        self.order = None
        if len(self.style) != len(self.xy):
            raise ValueError("one style index per point")
        self._sprites = list(sprites)
        self._atlas = None
        self._pad = max((s.size for s in sprites), default=0) / 2 + 1
        if len(self.xy):
            lo, hi = self.xy.min(axis=0), self.xy.max(axis=0)
            self._bounds = QRectF(lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1])
        else:
            self._bounds = QRectF()
        self.informViewBoundsChanged()
        self.update()

    def set_style(
        self, style: np.ndarray, sprites: list[Sprite], order: np.ndarray | None = None
    ) -> None:
        """New colours for the same points (no geometry change), and the order to draw them in
        (a permutation of the points; None: as given)."""
        self.style = np.asarray(style, dtype=np.int32).reshape(-1)
        self.order = None if order is None else np.asarray(order, dtype=np.int64)
        self._sprites = list(sprites)
        self._atlas = None
        self.update()

    def clear(self) -> None:
        self.set_data(np.zeros((0, 2)), np.zeros(0, np.int32), [])

    def __len__(self) -> int:
        return len(self.xy)

    # ----- geometry (what ViewBox auto-range and the scene ask for) ----------------------------
    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange=None):
        if not len(self.xy):
            return None
        v = self.xy[:, ax]
        if orthoRange is not None:
            o = self.xy[:, 1 - ax]
            v = v[(o >= orthoRange[0]) & (o <= orthoRange[1])]
            if not len(v):
                return None
        if frac >= 1.0:
            return float(v.min()), float(v.max())
        return tuple(float(q) for q in np.percentile(v, [50 * (1 - frac), 50 * (1 + frac)]))

    def pixelPadding(self) -> float:
        return self._pad

    def boundingRect(self) -> QRectF:
        if self._bounds.isNull() and not len(self.xy):
            return QRectF()
        px, py = self.pixelVectors()
        dx = self._pad * (px.length() if px is not None else 0.0)
        dy = self._pad * (py.length() if py is not None else 0.0)
        return self._bounds.adjusted(-dx, -dy, dx, dy)

    def viewTransformChanged(self) -> None:
        self.prepareGeometryChange()  # the pixel padding in data units changed

    # ----- drawing -----------------------------------------------------------------------------
    def _build_atlas(self, dpr: float) -> None:
        """All sprites side by side in one pixmap, and each one's source rectangle."""
        images = [renderSymbol(s.symbol, s.size, s.pen, s.brush, dpr=dpr) for s in self._sprites]
        width = sum(im.width() for im in images) or 1
        height = max((im.height() for im in images), default=1)
        atlas = QPixmap(width, height)
        atlas.fill(pg.mkColor(0, 0, 0, 0))
        rects = np.zeros((len(images), 4), np.float64)
        p = QPainter(atlas)
        x = 0
        for i, im in enumerate(images):
            p.drawImage(x, 0, im)
            rects[i] = (x, 0, im.width(), im.height())
            x += im.width()
        p.end()
        self._atlas, self._atlas_dpr, self._rects = atlas, dpr, rects

    def paint(self, p: QPainter, option, widget=None) -> None:
        if not len(self.xy) or not self._sprites:
            self.drawn = 0
            return
        dpr = widget.devicePixelRatioF() if widget is not None else 1.0
        if self._atlas is None or dpr != self._atlas_dpr:
            self._build_atlas(dpr)
        t = p.transform()
        x, y = self.xy[:, 0], self.xy[:, 1]
        dx = t.m11() * x + t.m21() * y + t.dx()
        dy = t.m12() * x + t.m22() * y + t.dy()
        dev = p.device()
        w, h = dev.width(), dev.height()
        pad = int(np.ceil(self._pad))
        inside = (dx > -pad) & (dx < w + pad) & (dy > -pad) & (dy < h + pad)
        idx = np.flatnonzero(inside) if self.order is None else self.order[inside[self.order]]
        if not len(idx):
            self.drawn = 0
            return
        # One point per cell of device pixels: the last one written to a cell wins, and it is
        # also the last one drawn there, so the kept point is the visible one. Cells are single
        # pixels (an exact picture) until the view holds many points; then 2x2 pixels, where a
        # dropped point lies within a pixel of a later one that covers all but its rim.
        cell = 1 if len(idx) <= EXACT_LIMIT else 2
        cols = (w + 2 * pad) // cell + 1
        ix = (dx[idx] + pad).astype(np.int64) // cell
        iy = (dy[idx] + pad).astype(np.int64) // cell
        size = cols * ((h + 2 * pad) // cell + 1)
        if len(self._occupied) < size:
            self._occupied = np.empty(size, np.int32)
        occ = self._occupied[:size]
        occ.fill(-1)
        occ[iy * cols + ix] = np.arange(len(idx), dtype=np.int32)
        keep = idx[np.sort(occ[occ >= 0])]  # back in drawing order
        self.drawn = len(keep)

        self._frags.resize(len(keep))
        frags = self._frags.ndarray()
        frags[:, 0] = dx[keep]
        frags[:, 1] = dy[keep]
        frags[:, 2:6] = self._rects[self.style[keep]]
        frags[:, 6:10] = (1 / dpr, 1 / dpr, 0.0, 1.0)
        p.resetTransform()
        p.drawPixmapFragments(*self._frags.drawargs(), self._atlas)
