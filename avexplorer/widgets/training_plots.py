"""Live training curves: losses per step, validation MAP per epoch, and the ratio r_t.

pyqtgraph idiom: every curve is created once (per run and component) and later only gets
``setData``; events just mark a run dirty, and the window's ``FrameScheduler`` redraws dirty runs
(the loss plot at most ten times a second, the per-epoch plots on a tick of their own), so a
training loop producing hundreds of steps a second costs the GUI thread at most ten loss redraws
a second, and an epoch end never repaints every plot at once.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from avexplorer.state.app_state import AppState
from avexplorer.state.run import Run
from avexplorer.widgets.paint_pacing import FrameScheduler

# MAP curves: line style, marker, marker size (avg filled, A2V and V2A hollow).
MAP_STYLES = {
    "avg": (Qt.PenStyle.SolidLine, "o", 7),
    "A2V": (Qt.PenStyle.DashLine, "t1", 10),
    "V2A": (Qt.PenStyle.DotLine, "t", 10),
    "R@1": (Qt.PenStyle.DashDotLine, "s", 6),  # Recall@1 of the true pair, mean of directions
}
LEGEND_BAND = 18  # px under the MAP plot's x axis: its legend's line (an axis label's height)
REFRESH_MS = 95  # the loss plot's shortest redraw interval: 10 Hz on 25 ms ticks
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


MAX_POINTS = 1500  # about two per pixel of a wide plot; painting cost grows with points


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


def settle(plot: pg.PlotWidget) -> None:
    """Apply auto-range now, after ``setData``, rather than while painting.

    Left to itself the ViewBox updates its range and its transform in the paint pass, which
    changes the items and the axes and schedules a second paint: every redraw of a growing curve
    was painted twice.
    """
    vb = plot.getViewBox()
    vb.prepareForPaint()  # the auto-range (when it is due) and the view transform, now


def plot_widget(title: str, x_label: str, y_label: str) -> pg.PlotWidget:
    w = pg.PlotWidget()
    cache_axes(w.getPlotItem())
    w.setTitle(title, size="10pt")
    w.setLabel("bottom", x_label)
    w.setLabel("left", y_label)
    w.showGrid(x=True, y=True, alpha=0.2)
    # No pyqtgraph setClipToView (it stops auto-range from following new steps) and no
    # setDownsampling: long curves are thinned by ``thin`` instead.
    return w


def nice_bounds(lo: float, hi: float, pad: float = 0.05) -> tuple[float, float]:
    """(lo, hi) padded and rounded outward to a round step (a tenth of the span's decade)."""
    span = hi - lo
    if not np.isfinite(span) or span <= 0:
        span = abs(hi) * 0.2 or 1.0
    lo, hi = lo - pad * span, hi + pad * span
    step = 10 ** np.floor(np.log10(hi - lo)) / 10
    return float(np.floor(lo / step) * step), float(np.ceil(hi / step) * step)


def unlisted_curve(plot: pg.PlotWidget, **style) -> pg.PlotDataItem:
    """An empty curve on ``plot`` that stays out of its legend: the legends list only what is
    shown (a curve named at creation joins the legend at once, hidden or not, and a hidden
    run's curves filled it with crossed-eye entries)."""
    curve = pg.PlotDataItem([], [], **style)
    plot.addItem(curve)
    return curve


class LegendUnderAxis(QObject):
    """A legend in place of the x axis' label, under the data (inside the view it covered the
    curves; the x axis is the epoch, as the neighbouring plots say). One line of entries, or two
    when the plot is narrower than one line (a 1024-pixel screen)."""

    def __init__(self, plot: pg.PlotWidget):
        super().__init__(plot)
        self.plot = plot
        item = plot.getPlotItem()
        item.getAxis("bottom").showLabel(False)
        self.legend = pg.LegendItem(labelTextSize="7.5pt", colCount=4, horSpacing=2)
        self.legend.setParentItem(item)
        self.legend.anchor(itemPos=(0.5, 1), parentPos=(0.5, 1), offset=(0, 2))
        self.band = pg.GraphicsWidget()  # the row the legend sits in
        self.band.setFixedHeight(LEGEND_BAND)
        item.layout.addItem(self.band, 4, 1)
        plot.installEventFilter(self)

    def fit(self) -> None:
        """Two columns when four do not fit the plot's width; the band as high as the lines."""
        if not self.legend.items:
            return
        self.legend.setColumnCount(4)
        columns = 4 if self.legend.width() <= self.plot.width() - 4 else 2
        self.legend.setColumnCount(columns)
        self.band.setFixedHeight(max(LEGEND_BAND, int(np.ceil(self.legend.height())) + 2))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            self.fit()
        return False


class FollowRange:
    """Keeps a live plot's view on its data in coarse steps, so that its axes seldom change.

    pyqtgraph's auto-range follows the data exactly: with a curve growing at every frame both axes
    get new ticks every frame, and regenerating them was two thirds of a loss-plot repaint (13 ms
    of 18, measured offscreen). Here x grows by 30 % at a time (up to the run's last step) and y
    changes only when the data leave it or shrink to under 60 % of it. Panning or zooming by hand
    stops the following; the plot's "A" button (auto-range) resumes it.
    """

    def __init__(self, plot: pg.PlotWidget, on_resume) -> None:
        self.vb = plot.getViewBox()
        self.following = True
        self._on_resume = on_resume
        self._busy = False
        self.vb.disableAutoRange()
        self.vb.sigRangeChangedManually.connect(self._manual)
        self.vb.sigStateChanged.connect(self._state_changed)

    def _manual(self, *_args) -> None:
        self.following = False

    def _state_changed(self, *_args) -> None:
        if self._busy or not any(self.vb.autoRangeEnabled()):
            return
        self._busy = True  # auto-range asked for (the "A" button): follow again, our way
        self.vb.disableAutoRange()
        self._busy = False
        self.following = True
        self._on_resume()

    def update(self, x_lo: float, x_hi: float, y_lo: float, y_hi: float, x_cap: float) -> None:
        if not self.following or not (np.isfinite(y_lo) and np.isfinite(y_hi)):
            return
        (cx0, cx1), (cy0, cy1) = self.vb.viewRange()
        x_range = (cx0, cx1)
        if x_lo < cx0 or x_hi > cx1 or x_hi < 0.5 * cx1:
            x_range = (x_lo, max(min(x_hi * 1.3, x_cap), x_hi, x_lo + 1))
        y_range = (cy0, cy1)
        if y_lo < cy0 or y_hi > cy1 or (y_hi - y_lo) < 0.6 * (cy1 - cy0):
            y_range = nice_bounds(y_lo, y_hi)
        if (x_range, y_range) != ((cx0, cx1), (cy0, cy1)):
            self._busy = True
            self.vb.setRange(xRange=x_range, yRange=y_range, padding=0)
            self._busy = False


class TrainingPlots(QWidget):
    def __init__(
        self,
        state: AppState,
        parent: QWidget | None = None,
        frames: FrameScheduler | None = None,
    ):
        super().__init__(parent)
        self.state = state
        self.loss_plot = plot_widget("Loss per step", "step", "loss")
        self.map_plot = plot_widget("Val MAP and R@1", "epoch", "MAP, R@1")
        self.rank_plot = plot_widget("Median rank", "epoch", "rank of true pair")
        self.r_plot = plot_widget("Ratio r_t", "epoch", "annotated share")
        self.loss_range = FollowRange(self.loss_plot, self._all_dirty)
        self.map_plot.setYRange(0, 1)
        self.r_plot.setYRange(0, 1.05)
        legend_brush = pg.mkBrush(255, 255, 255, 200)  # curves stay visible under the legend
        self.loss_legend = self.loss_plot.addLegend(
            offset=(-5, 5), labelTextSize="8pt", brush=legend_brush
        )
        # A2V, V2A and avg are often within a hair of each other: each has its own line style
        # and hollow marker (so a line under another still shows its markers) and a legend.
        self.map_legend_row = LegendUnderAxis(self.map_plot)
        self.map_legend = self.map_legend_row.legend
        self._map_legend_run: int | None = None
        self.loss_curves: dict[tuple[int, str], pg.PlotDataItem] = {}
        self._curve_names: dict[tuple[int, str], str] = {}  # loss legend entries
        self.map_curves: dict[tuple[int, str], pg.PlotDataItem] = {}
        self.r_curves: dict[int, pg.PlotDataItem] = {}
        self.rank_curves: dict[int, pg.PlotDataItem] = {}
        self._component_colors: dict[str, QColor] = {}
        self._smoothed: dict[tuple[int, str], SmoothedSeries] = {}
        self._legend_keys: tuple = ()
        self._dirty: set[int] = set()  # runs whose losses changed
        self._epochs_dirty: set[int] = set()  # runs whose per-epoch curves may have changed
        self._epochs_drawn: dict[int, tuple] = {}  # run id -> (epochs, current, visible) drawn
        self.redraws = 0  # loss-plot redraws with new data (the GUI benchmark counts them)

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
        # The MAP plot's share holds its legend on one line from about 1024 pixels up.
        bottom.addWidget(self.map_plot, 7)
        bottom.addWidget(self.rank_plot, 4)
        bottom.addWidget(self.r_plot, 4)
        layout.addLayout(bottom, 2)

        self.frames = frames if frames is not None else FrameScheduler(parent=self)
        self.frames.add(self.refresh_losses, REFRESH_MS)
        self.frames.add(self.refresh_epochs)
        # Not ``self._dirty.add``: ``refresh`` swaps in a new set, and a bound ``add`` would keep
        # filling the old one (steps then only showed at epoch ends).
        state.signals.stepsAppended.connect(self._mark_dirty)
        state.signals.epochAdded.connect(lambda rid, _e: self._mark_dirty(rid))
        state.signals.runAdded.connect(self._mark_dirty)
        state.signals.runVisibilityChanged.connect(self._all_dirty)
        state.signals.currentRunChanged.connect(lambda _r: self._all_dirty())

    @property
    def alpha(self) -> float:
        return self.smoothing.value() / 100.0

    def _smoothing_changed(self) -> None:
        self.smoothing_label.setText(f"{self.alpha:.2f}")
        self._smoothed.clear()  # a new alpha: smooth every curve again from its start
        self._all_dirty()

    def _mark_dirty(self, rid: int) -> None:
        self._dirty.add(rid)
        self._epochs_dirty.add(rid)

    def _all_dirty(self) -> None:
        self._dirty.update(self.state.runs)
        self._epochs_dirty.update(self.state.runs)
        # Runs removed from the session: hide their curves (kept, never recreated).
        for key, curve in [*self.loss_curves.items(), *self.map_curves.items()]:
            if key[0] not in self.state.runs:
                curve.setVisible(False)
        for rid, curve in [*self.r_curves.items(), *self.rank_curves.items()]:
            if rid not in self.state.runs:
                curve.setVisible(False)

    def refresh(self) -> None:
        """Redraw everything that changed (the scheduler does it in two turns)."""
        self.refresh_losses()
        self.refresh_epochs()

    def refresh_losses(self) -> bool:
        """Redraw the loss curves of the runs that changed; True if anything was redrawn."""
        if not self._dirty or not self.isVisible():
            return False  # hidden (another tab): stay dirty, draw when shown
        dirty, self._dirty = self._dirty, set()
        for rid in dirty:
            run = self.state.runs.get(rid)
            if run is not None:
                self._draw_losses(run)
        self._rebuild_legends()
        self._follow_losses()
        settle(self.loss_plot)
        self.redraws += 1
        return True

    def _follow_losses(self) -> None:
        """Point the loss plot's view at its visible curves (see ``FollowRange``)."""
        x_lo, x_hi, y_lo, y_hi, cap = np.inf, -np.inf, np.inf, -np.inf, 0.0
        for (rid, _name), curve in self.loss_curves.items():
            x, y = curve.xData, curve.yData
            if not curve.isVisible() or x is None or not len(x) or rid not in self.state.runs:
                continue
            x_lo, x_hi = min(x_lo, float(x[0])), max(x_hi, float(x[-1]))
            finite = y[np.isfinite(y)]
            if len(finite):
                y_lo, y_hi = min(y_lo, float(finite.min())), max(y_hi, float(finite.max()))
            cap = max(cap, float(self.state.runs[rid].total_steps))
        if np.isfinite(x_lo):
            self.loss_range.update(x_lo, x_hi, y_lo, y_hi, x_cap=cap or x_hi)

    def refresh_epochs(self) -> bool:
        """Redraw the MAP and r_t curves of runs with new epochs; True if anything changed."""
        if not self._epochs_dirty or not self.isVisible():
            return False
        dirty, self._epochs_dirty = self._epochs_dirty, set()
        drew = False
        for rid in dirty:
            run = self.state.runs.get(rid)
            if run is not None:
                drew |= self._draw_epochs(run)
        if drew:
            self._rebuild_legends()
            settle(self.map_plot)
            settle(self.r_plot)
        return drew

    def _component_color(self, name: str) -> QColor:
        if name not in self._component_colors:
            i = len(self._component_colors)
            self._component_colors[name] = QColor(_COMPONENT_COLORS[i % len(_COMPONENT_COLORS)])
        return self._component_colors[name]

    def _draw_losses(self, run: Run) -> None:
        current = run.id == self.state.runs.current_run_id
        x = np.asarray(run.steps, dtype=np.float64)
        for name, values in run.losses.items():
            key = (run.id, name)
            curve = self.loss_curves.get(key)
            if curve is None:
                curve = unlisted_curve(self.loss_plot)
                self.loss_curves[key] = curve
                self._curve_names[key] = f"{run.name} · {name}"
            if name == "total":
                style = Qt.PenStyle.SolidLine if current else Qt.PenStyle.DashLine
                # Pen widths are a cost: antialiased 1 px lines are Qt's fast path, and wider
                # pens cost several times more per repaint (docs/app.md gives the measurements).
                curve.setPen(pg.mkPen(run.color, width=2 if current else 1, style=style))
                show = current or run.visible
            else:
                curve.setPen(pg.mkPen(self._component_color(name), width=1))
                show = current
            curve.setVisible(show)
            if show:
                smooth = self._smoothed.get(key)
                if smooth is None:
                    smooth = self._smoothed[key] = SmoothedSeries(self.alpha)
                # Smooth on every step, then thin: smoothing after thinning would alias.
                curve.setData(*thin(x, smooth.extend(values)))

    def _draw_epochs(self, run: Run) -> bool:
        current = run.id == self.state.runs.current_run_id
        show = current or run.visible
        # Per-epoch curves change a few times a minute: leave them (and their plots) alone on
        # the step refreshes, or both plots repaint ten times a second for nothing.
        state = (len(run.epochs), current, show)
        if self._epochs_drawn.get(run.id) == state:
            return False
        self._epochs_drawn[run.id] = state
        x = np.array([e.epoch for e in run.epochs], dtype=np.float64)
        series = {
            "avg": [e.val.avg for e in run.epochs],
            "A2V": [e.val.a2v for e in run.epochs],
            "V2A": [e.val.v2a for e in run.epochs],
            "R@1": [e.val.recall_at_1_avg for e in run.epochs],
        }
        for name, values in series.items():
            key = (run.id, name)
            curve = self.map_curves.get(key)
            if curve is None:
                line, symbol, size = MAP_STYLES[name]
                filled = name == "avg"
                curve = unlisted_curve(
                    self.map_plot,
                    pen=pg.mkPen(run.color, width=2 if filled else 1.5, style=line),
                    symbol=symbol,
                    symbolSize=size,
                    symbolBrush=run.color if filled else None,
                    symbolPen=pg.mkPen(run.color, width=1.2),
                )
                self.map_curves[key] = curve
            curve.setVisible(show and (name == "avg" or current))
            curve.setData(x, np.asarray(values, dtype=np.float64))
        if current and self._map_legend_run != run.id:
            self._map_legend_run = run.id
            self.map_legend.clear()
            for name in series:
                self.map_legend.addItem(self.map_curves[(run.id, name)], name)
            self.map_legend_row.fit()
        per_epoch = (
            (
                self.rank_plot,
                self.rank_curves,
                "o",
                [e.val.median_rank_avg for e in run.epochs],
            ),
            (self.r_plot, self.r_curves, "s", [e.r for e in run.epochs]),
        )
        for plot, curves, symbol, values in per_epoch:
            curve = curves.get(run.id)
            if curve is None:
                curve = curves[run.id] = plot.plot(
                    [],
                    [],
                    pen=pg.mkPen(run.color, width=2),
                    symbol=symbol,
                    symbolSize=5,
                    symbolBrush=run.color,
                    symbolPen=None,
                )
            curve.setVisible(show)
            curve.setData(x, np.asarray(values, dtype=np.float64))
        return True

    def _rebuild_legends(self) -> None:
        # Rebuilding a legend creates graphics items: do it only when the visible set changes.
        keys = tuple(k for k, c in self.loss_curves.items() if c.isVisible())
        if keys == self._legend_keys:
            return
        self._legend_keys = keys
        self.loss_legend.clear()
        for key, curve in self.loss_curves.items():
            if curve.isVisible():
                self.loss_legend.addItem(curve, self._curve_names[key])

    def plots(self) -> dict[str, pg.PlotWidget]:
        return {
            "Loss": self.loss_plot,
            "Validation MAP": self.map_plot,
            "Median rank": self.rank_plot,
            "r_t": self.r_plot,
        }
