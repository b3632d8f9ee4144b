"""Live training curves: losses per step, validation MAP per epoch, and the ratio r_t.

pyqtgraph idiom: every curve is created once (per run and component) and later only gets
``setData``; events just mark a run dirty, and a 10 Hz timer redraws dirty runs, so a training
loop producing hundreds of steps a second costs the GUI thread at most ten redraws a second.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from avexplorer.session import Run, Session

REFRESH_MS = 100
_COMPONENT_COLORS = ["#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]


def ema(values: np.ndarray, alpha: float) -> np.ndarray:
    """Bias-corrected exponential moving average (TensorBoard-style smoothing), NaN-tolerant."""
    return SmoothedSeries(alpha).extend(values)


class SmoothedSeries:
    """An EMA kept up to date incrementally: each redraw smooths only the new steps.

    A plain Python loop on purpose: it is O(new points) per redraw, and importing scipy on the
    GUI thread for ``lfilter`` cost a visible stall the first time.
    """

    def __init__(self, alpha: float):
        self.alpha = alpha
        self.num = 0.0
        self.den = 0.0
        self.out: list[float] = []

    def extend(self, values: np.ndarray | list[float]) -> np.ndarray:
        a, num, den = self.alpha, self.num, self.den
        out = self.out
        for v in values[len(out) :] if isinstance(values, list) else values:
            if v == v:  # not NaN
                num = a * num + (1 - a) * v
                den = a * den + (1 - a)
            else:
                num, den = a * num, a * den
            out.append(num / den if den > 0 else float("nan"))
        self.num, self.den = num, den
        return np.asarray(out, dtype=np.float64)


MAX_POINTS = 4000


def thin(x: np.ndarray, y: np.ndarray, limit: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` points of a long curve: every k-th point, always keeping the last."""
    if len(x) <= limit:
        return x, y
    step = int(np.ceil(len(x) / limit))
    keep = np.r_[np.arange(0, len(x) - 1, step), len(x) - 1]
    return x[keep], y[keep]


def cache_axes(plot: pg.PlotItem) -> None:
    """Serve axes from a pixmap cache between tick changes.

    pyqtgraph replays each axis' QPicture (tick text included) on every repaint of the view; with
    a dozen axes on screen that replay was most of a refresh (~100 ms on a loaded 2-core box).
    """
    from PySide6.QtWidgets import QGraphicsItem

    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        if axis is not None:
            axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


def plot_widget(title: str, x_label: str, y_label: str) -> pg.PlotWidget:
    w = pg.PlotWidget()
    cache_axes(w.getPlotItem())
    w.setTitle(title, size="10pt")
    w.setLabel("bottom", x_label)
    w.setLabel("left", y_label)
    w.showGrid(x=True, y=True, alpha=0.2)
    # No pyqtgraph setClipToView (it stops auto-range from following new steps) and no
    # setDownsampling (with PySide6 6.12 + pyqtgraph 0.14 it crashes the interpreter with a
    # refcount error on None): long curves are thinned by ``thin`` instead.
    return w


class TrainingPlots(QWidget):
    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.loss_plot = plot_widget("Loss per step", "step", "loss")
        self.map_plot = plot_widget("Validation MAP per epoch", "epoch", "MAP")
        self.r_plot = plot_widget("Annotated ratio r_t", "epoch", "r")
        self.map_plot.setYRange(0, 1)
        self.r_plot.setYRange(0, 1.05)
        self.loss_legend = self.loss_plot.addLegend(offset=(-5, 5), labelTextSize="8pt")
        self.map_legend = self.map_plot.addLegend(offset=(-5, -5), labelTextSize="8pt")
        self.loss_curves: dict[tuple[int, str], pg.PlotDataItem] = {}
        self.map_curves: dict[tuple[int, str], pg.PlotDataItem] = {}
        self.r_curves: dict[int, pg.PlotDataItem] = {}
        self._component_colors: dict[str, QColor] = {}
        self._smoothed: dict[tuple[int, str], SmoothedSeries] = {}
        self._legend_keys: tuple = ()
        self._dirty: set[int] = set()
        self.redraws = 0  # counted for the GUI benchmark

        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(60)
        self.smoothing.setToolTip("Exponential smoothing of the loss curves (0 = raw)")
        self.smoothing_label = QLabel()
        self.smoothing.valueChanged.connect(self._smoothing_changed)
        self._smoothing_changed()

        row = QHBoxLayout()
        row.addWidget(QLabel("Smoothing"))
        row.addWidget(self.smoothing, 1)
        row.addWidget(self.smoothing_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.loss_plot, 3)
        layout.addLayout(row)
        bottom = QHBoxLayout()
        bottom.addWidget(self.map_plot, 3)
        bottom.addWidget(self.r_plot, 2)
        layout.addLayout(bottom, 2)

        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        # Not ``self._dirty.add``: ``refresh`` swaps in a new set, and a bound ``add`` would keep
        # filling the old one (steps then only showed at epoch ends).
        session.stepsAppended.connect(self._mark_dirty)
        session.epochAdded.connect(lambda rid, _e: self._mark_dirty(rid))
        session.runAdded.connect(self._mark_dirty)
        session.runVisibilityChanged.connect(self._all_dirty)
        session.currentRunChanged.connect(lambda _r: self._all_dirty())

    @property
    def alpha(self) -> float:
        return self.smoothing.value() / 100.0

    def _smoothing_changed(self) -> None:
        self.smoothing_label.setText(f"{self.alpha:.2f}")
        self._smoothed.clear()  # a new alpha: smooth every curve again from its start
        self._all_dirty()

    def _mark_dirty(self, rid: int) -> None:
        self._dirty.add(rid)

    def _all_dirty(self) -> None:
        self._dirty.update(self.session.runs)
        # Runs removed from the session: hide their curves (kept, never recreated).
        for key, curve in [*self.loss_curves.items(), *self.map_curves.items()]:
            if key[0] not in self.session.runs:
                curve.setVisible(False)
        for rid, curve in self.r_curves.items():
            if rid not in self.session.runs:
                curve.setVisible(False)

    def refresh(self) -> None:
        """Redraw the runs that changed since the last tick (called by the timer)."""
        if not self._dirty or not self.isVisible():
            return  # hidden (another tab): stay dirty, draw when shown
        dirty, self._dirty = self._dirty, set()
        for rid in dirty:
            run = self.session.runs.get(rid)
            if run is not None:
                self._draw_losses(run)
                self._draw_epochs(run)
        self._rebuild_legends()
        self.redraws += 1

    def _component_color(self, name: str) -> QColor:
        if name not in self._component_colors:
            i = len(self._component_colors)
            self._component_colors[name] = QColor(_COMPONENT_COLORS[i % len(_COMPONENT_COLORS)])
        return self._component_colors[name]

    def _draw_losses(self, run: Run) -> None:
        current = run.id == self.session.current_run_id
        x = np.asarray(run.steps, dtype=np.float64)
        for name, values in run.losses.items():
            key = (run.id, name)
            curve = self.loss_curves.get(key)
            if curve is None:
                curve = self.loss_plot.plot([], [], name=f"{run.name} · {name}")
                self.loss_curves[key] = curve
            if name == "total":
                style = Qt.PenStyle.SolidLine if current else Qt.PenStyle.DashLine
                curve.setPen(pg.mkPen(run.color, width=2.5 if current else 1.5, style=style))
                show = current or run.visible
            else:
                curve.setPen(pg.mkPen(self._component_color(name), width=1.2))
                show = current
            curve.setVisible(show)
            if show:
                smooth = self._smoothed.get(key)
                if smooth is None:
                    smooth = self._smoothed[key] = SmoothedSeries(self.alpha)
                # Smooth on every step, then thin: smoothing after thinning would alias.
                curve.setData(*thin(x, smooth.extend(values)))

    def _draw_epochs(self, run: Run) -> None:
        current = run.id == self.session.current_run_id
        show = current or run.visible
        x = np.array([e.epoch + 1 for e in run.epochs], dtype=np.float64)
        series = {
            "avg": [e.val.avg for e in run.epochs],
            "A2V": [e.val.a2v for e in run.epochs],
            "V2A": [e.val.v2a for e in run.epochs],
        }
        for name, values in series.items():
            key = (run.id, name)
            curve = self.map_curves.get(key)
            if curve is None:
                style = {
                    "avg": Qt.PenStyle.SolidLine,
                    "A2V": Qt.PenStyle.DashLine,
                    "V2A": Qt.PenStyle.DotLine,
                }[name]
                curve = self.map_plot.plot(
                    [],
                    [],
                    name=f"{run.name} · {name}",
                    pen=pg.mkPen(run.color, width=2 if name == "avg" else 1.2, style=style),
                    symbol="o" if name == "avg" else None,
                    symbolSize=6,
                    symbolBrush=run.color,
                    symbolPen=None,
                )
                self.map_curves[key] = curve
            curve.setVisible(show and (name == "avg" or current))
            curve.setData(x, np.asarray(values, dtype=np.float64))
        curve = self.r_curves.get(run.id)
        if curve is None:
            curve = self.r_plot.plot(
                [],
                [],
                pen=pg.mkPen(run.color, width=2),
                symbol="s",
                symbolSize=5,
                symbolBrush=run.color,
                symbolPen=None,
            )
            self.r_curves[run.id] = curve
        curve.setVisible(show)
        curve.setData(x, np.array([e.r for e in run.epochs], dtype=np.float64))

    def _rebuild_legends(self) -> None:
        # Rebuilding a legend creates graphics items: do it only when the visible set changes.
        keys = tuple(
            k for d in (self.loss_curves, self.map_curves) for k, c in d.items() if c.isVisible()
        )
        if keys == self._legend_keys:
            return
        self._legend_keys = keys
        for legend, curves in (
            (self.loss_legend, self.loss_curves),
            (self.map_legend, self.map_curves),
        ):
            legend.clear()
            for curve in curves.values():
                if curve.isVisible():
                    legend.addItem(curve, curve.name())

    def plots(self) -> dict[str, pg.PlotWidget]:
        return {"Loss": self.loss_plot, "Validation MAP": self.map_plot, "r_t": self.r_plot}
