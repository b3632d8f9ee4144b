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

Level of detail, past ``LOD_MIN`` points: mapping every point at every paint costs time linear in
the points (a pan frame of a million points took ~100 ms). So the item also keeps, per level, the
last-drawn point of each cell of a grid over the data (``LOD_LEVELS`` cells a side, built once per
data, style and order, at the first paint that needs it). When a level's cells are no larger than
a device pixel, a paint maps only that level's points: a point left out lies within a pixel of a
later one drawn over it, so the picture is the one the full paint would make (the same argument
as step 3). Zoomed in further, a coarse grid of the points (``INDEX_CELLS`` a side, sorted by
cell once) gives the points of the cells in view, and only those are mapped.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.graphicsItems.ScatterPlotItem import renderSymbol
from pyqtgraph.Qt import internals
from PySide6.QtCore import QRectF
from PySide6.QtGui import QBrush, QPainter, QPen, QPixmap

EXACT_LIMIT = 50_000  # points in view up to which every device pixel keeps its own point
LOD_MIN = 200_000  # from this many points a zoomed-out paint maps only a level's points
LOD_LEVELS = (256, 512, 1024, 2048)  # grid cells a side of each level
INDEX_CELLS = 64  # cells a side of the grid that finds the points in view when zoomed in


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
        self._levels: dict[int, np.ndarray] = {}  # cells a side -> its points, in drawing order
        self._index: tuple[np.ndarray, np.ndarray] | None = None  # drawing positions by cell
        self.drawn = 0  # fragments drawn by the last paint (the benchmark reports it)
        self.mapped = 0  # points the last paint mapped to pixels (all, or a level's)

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
        self._levels, self._index = {}, None
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
        self._levels, self._index = {}, None
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
        dev = p.device()
        w, h = dev.width(), dev.height()
        pad = int(np.ceil(self._pad))
        level = self._level_for(float(np.hypot(t.m11(), t.m12())))
        if level is None and len(self.xy) >= LOD_MIN:  # zoomed in: the points of visible cells
            seen, _invertible = t.inverted()
            level = self._visible(seen.mapRect(QRectF(-pad, -pad, w + 2 * pad, h + 2 * pad)))
        if level is None:
            x, y = self.xy[:, 0], self.xy[:, 1]
        else:  # only these points are mapped
            x, y = self.xy[level, 0], self.xy[level, 1]
        self.mapped = len(x)
        dx = t.m11() * x + t.m21() * y + t.dx()
        dy = t.m12() * x + t.m22() * y + t.dy()
        inside = (dx > -pad) & (dx < w + pad) & (dy > -pad) & (dy < h + pad)
        if level is not None:
            at = np.flatnonzero(inside)  # positions in the level (already in drawing order)
            idx = level[at]
            dx, dy = dx[at], dy[at]
        else:
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
        px, py = (dx, dy) if level is not None else (dx[idx], dy[idx])
        ix = (px + pad).astype(np.int64) // cell
        iy = (py + pad).astype(np.int64) // cell
        size = cols * ((h + 2 * pad) // cell + 1)
        if len(self._occupied) < size:
            self._occupied = np.empty(size, np.int32)
        occ = self._occupied[:size]
        occ.fill(-1)
        occ[iy * cols + ix] = np.arange(len(idx), dtype=np.int32)
        kept = np.sort(occ[occ >= 0])  # back in drawing order
        keep = idx[kept]
        self.drawn = len(keep)

        self._frags.resize(len(keep))
        frags = self._frags.ndarray()
        frags[:, 0] = px[kept]
        frags[:, 1] = py[kept]
        frags[:, 2:6] = self._rects[self.style[keep]]
        frags[:, 6:10] = (1 / dpr, 1 / dpr, 0.0, 1.0)
        p.resetTransform()
        p.drawPixmapFragments(*self._frags.drawargs(), self._atlas)

    # ----- level of detail ---------------------------------------------------------------------
    def _level_for(self, pixels_per_unit: float) -> np.ndarray | None:
        """The points of the coarsest level whose cells are at most a device pixel at this
        scale, or None (few points, or zoomed in past every level: map them all)."""
        n = len(self.xy)
        if n < LOD_MIN or pixels_per_unit <= 0:
            return None
        span = max(self._bounds.width(), self._bounds.height())
        if not span > 0:
            return None
        for cells in LOD_LEVELS:
            if span / cells * pixels_per_unit <= 1.0:
                return self._level(cells, span)
        return None

    def _level(self, cells: int, span: float) -> np.ndarray:
        """The last-drawn point of each occupied cell of a ``cells`` x ``cells`` grid over the
        data, in drawing order."""
        level = self._levels.get(cells)
        if level is None:
            order = np.arange(len(self.xy)) if self.order is None else self.order
            lo = np.array([self._bounds.left(), self._bounds.top()])
            grid = ((self.xy[order] - lo) * (cells / span)).astype(np.int64)
            np.clip(grid, 0, cells - 1, out=grid)
            occ = np.full(cells * cells, -1, np.int64)
            occ[grid[:, 1] * cells + grid[:, 0]] = np.arange(len(order))
            level = order[np.sort(occ[occ >= 0])]
            self._levels[cells] = level
        return level

    def _visible(self, rect: QRectF) -> np.ndarray | None:
        """The points in the cells of a coarse grid that ``rect`` (data units) touches, in
        drawing order; None when that is most of them (then mapping all is as quick)."""
        span = max(self._bounds.width(), self._bounds.height())
        if not span > 0:
            return None
        cells = INDEX_CELLS
        if self._index is None:
            order = np.arange(len(self.xy)) if self.order is None else self.order
            lo = np.array([self._bounds.left(), self._bounds.top()])
            grid = ((self.xy[order] - lo) * (cells / span)).astype(np.int64)
            np.clip(grid, 0, cells - 1, out=grid)
            cell = grid[:, 1] * cells + grid[:, 0]
            by_cell = np.argsort(cell, kind="stable")  # drawing positions, grouped by cell
            starts = np.searchsorted(cell[by_cell], np.arange(cells * cells + 1))
            self._index = (by_cell, starts)
        by_cell, starts = self._index
        scale = cells / span
        x0, x1 = (np.array([rect.left(), rect.right()]) - self._bounds.left()) * scale
        y0, y1 = (np.array([rect.top(), rect.bottom()]) - self._bounds.top()) * scale
        cx0, cx1 = max(int(x0), 0), min(int(x1), cells - 1)
        cy0, cy1 = max(int(y0), 0), min(int(y1), cells - 1)
        if cx0 > cx1 or cy0 > cy1:
            return np.zeros(0, np.int64)
        rows = [(starts[r * cells + cx0], starts[r * cells + cx1 + 1]) for r in range(cy0, cy1 + 1)]
        if sum(b - a for a, b in rows) > len(self.xy) // 2:
            return None
        positions = np.sort(np.concatenate([by_cell[a:b] for a, b in rows]))
        return positions if self.order is None else self.order[positions]
