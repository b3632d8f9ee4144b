"""Lasso and box selection on a pyqtgraph plot: a ViewBox that draws the outline and reports it.

With the lasso or box tool, a left drag draws the outline and its release reports the polygon in
data coordinates with the mode its modifier keys ask for: none replaces the selection, Shift adds
to it, Ctrl (or Alt) subtracts from it. With the pan tool a drag pans, except that Shift or Ctrl
held still starts a lasso. Which points fall inside is the caller's business
(``core.exploration.selection.points_in_polygon``).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal

TOOLS = ("pan", "lasso", "box")
MIN_STEP_PX = 2.0  # lasso vertices closer than this (in pixels) to the previous one are dropped


def mode_of(modifiers: Qt.KeyboardModifier) -> str:
    """Replace, add (Shift) or subtract (Ctrl or Alt)."""
    if modifiers & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier):
        return "subtract"
    if modifiers & Qt.KeyboardModifier.ShiftModifier:
        return "add"
    return "replace"


class SelectingViewBox(pg.ViewBox):
    selected = Signal(object, str)  # polygon [K, 2] in data coordinates, mode

    def __init__(self) -> None:
        super().__init__()
        self.tool = "pan"
        self._vertices: list[tuple[float, float]] = []
        self._last_px: QPointF | None = None
        self._drawing = ""  # the tool of the drag under way
        self.outline = pg.PlotCurveItem(
            pen=pg.mkPen((20, 20, 20), width=1.5, style=Qt.PenStyle.DashLine)
        )
        self.outline.setZValue(1000)
        self.outline.setVisible(False)
        self.addItem(self.outline, ignoreBounds=True)

    def set_tool(self, tool: str) -> None:
        if tool in TOOLS:
            self.tool = tool

    def mouseDragEvent(self, ev, axis=None) -> None:
        held = ev.modifiers() & (
            Qt.KeyboardModifier.ShiftModifier
            | Qt.KeyboardModifier.ControlModifier
            | Qt.KeyboardModifier.AltModifier
        )
        tool = self._drawing or (self.tool if self.tool != "pan" else "lasso" if held else "")
        if ev.button() != Qt.MouseButton.LeftButton or not tool:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        if ev.isStart():
            self._drawing = tool
            start = self.mapSceneToView(ev.buttonDownScenePos())
            self._vertices = [(start.x(), start.y())]
            self._last_px = ev.buttonDownScenePos()
        here = self.mapSceneToView(ev.scenePos())
        if tool == "box":
            (x0, y0), (x1, y1) = self._vertices[0], (here.x(), here.y())
            self._vertices = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        else:
            moved = ev.scenePos() - self._last_px if self._last_px is not None else None
            if moved is None or abs(moved.x()) + abs(moved.y()) >= MIN_STEP_PX:
                self._vertices.append((here.x(), here.y()))
                self._last_px = ev.scenePos()
        poly = np.array(self._vertices + self._vertices[:1])
        self.outline.setData(poly[:, 0], poly[:, 1])
        self.outline.setVisible(True)
        if ev.isFinish():
            polygon = np.array(self._vertices)
            self._drawing, self._vertices, self._last_px = "", [], None
            self.outline.setVisible(False)
            self.selected.emit(polygon, mode_of(ev.modifiers()))
