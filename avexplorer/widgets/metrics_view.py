"""The Metrics view: what one MAP number hides, for a run and against a second run.

- Headline numbers per direction (MAP, class-balanced MAP, MAP@R, R-precision, Recall@1/5/10,
  MRR, median rank of the true pair), and B - A when a second run is chosen.
- Per-class AP bars for A2V and V2A; with a second run its bars stand beside the first's and a
  third plot shows B - A per class (green: B better, red: B worse).
- The class confusion of the top-10 results (row: the query's class; column: the results'
  class). Clicking a cell lists the queries of the row's class whose top 10 hold the column's
  class; clicking one opens it in the retrieval view.
- A failure browser (the queries with the lowest AP, or whose true pair ranks worst), one click
  from the retrieval view, and a histogram of the true pair's rank.

With a selection (``state.selection.current``), every number is of the selected queries only
(A2V: the selected audio items; V2A: the selected visual ones), each still ranked against the full
gallery; a caption says how many, and its "show all" link clears the selection. The per-query
results are computed once for all queries and picked from (``CrossModalMetrics.subset``), so a new
selection costs no recomputation.

Numbers come from ``core.evaluation.metrics`` (computed in a worker when the view asks the state for
them); the view renders ``state.embeddings.metrics`` and sends intents (``request_metrics``,
``set_item_query``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGridLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from avexplorer.state.app_state import AppState
from avexplorer.state.retrieval import DIRECTIONS, modality_of
from avexplorer.state.run import CHECKPOINT_RUN
from avexplorer.widgets.embedding_map import rank_bins
from avexplorer.widgets.flow_row import FlowRow, group
from avexplorer.widgets.training_plots import cache_axes

FAILURES = 50  # rows of the failure browser
PLOT_MIN_WIDTH = 170  # px: a plot's narrowest, for ten classes' bars or five bins' labels
CELL_HINT = "Click a cell of the confusion (row: the queries' class, column: their results')"
NO_RUN = -999  # the "compare with" box's "nobody" entry
GAIN, LOSS = QColor("#2ca02c"), QColor("#d62728")
# Bars of run A and run B: fixed colours, apart from the gain/loss green and red (a run's own
# colour could be either).
RUN_COLORS = (QColor("#4363d8"), QColor("#f58231"))


# Column heads of the summary table (its tooltip gives the full names).
SHORT_NAMES = {
    "class-balanced MAP": "bal. MAP",
    "R-precision": "R-prec.",
    "median rank": "med. rank",
}


class _ConfusionImage(pg.ImageItem):
    """The confusion matrix; a click on a cell reports (row, column)."""

    def __init__(self, on_click: Any) -> None:
        super().__init__(axisOrder="row-major")
        self._on_click = on_click

    def mouseClickEvent(self, ev: Any) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or self.image is None:
            return
        pos = ev.pos()
        row, col = int(np.floor(pos.y())), int(np.floor(pos.x()))
        if 0 <= row < self.image.shape[0] and 0 <= col < self.image.shape[1]:
            ev.accept()
            self._on_click(row, col)


def _plot(title: str, left: str) -> pg.PlotWidget:
    w = pg.PlotWidget()
    cache_axes(w.getPlotItem())
    w.setTitle(title, size="9pt")
    w.setLabel("left", left)
    w.getAxis("left").enableAutoSIPrefix(False)  # AP differences in AP units, not "x0.001"
    w.setMenuEnabled(False)
    w.showGrid(y=True, alpha=0.2)
    return w


def _keep_whole(plot: pg.PlotWidget, narrowest: int) -> None:
    """No narrower than its title, axes and colour bar need (with their new tick labels): a
    splitter squeezing it further cut them off at its edge; the row scrolls instead."""
    least = plot.getPlotItem().effectiveSizeHint(Qt.SizeHint.MinimumSize).width()
    plot.setMinimumWidth(max(narrowest, int(np.ceil(least)) + 2))


def _small_font() -> QFont:
    font = QFont()
    font.setPointSizeF(font.pointSizeF() * 0.85)
    return font


class MetricsView(QWidget):
    queryOpened = Signal()  # a query was opened from here: the window shows the retrieval view

    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.run_a = QComboBox()
        self.run_a.setToolTip("The run whose latest test embeddings are measured")
        self.run_b = QComboBox()
        self.run_b.setToolTip("A second run to compare with (B - A)")
        self.direction = QComboBox()
        self.direction.addItems(list(DIRECTIONS))
        self.direction.setToolTip("Direction of the confusion, failures and rank histogram")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.scope = QLabel()  # "selection: N of M queries · show all", hidden without one
        self.scope.setTextFormat(Qt.TextFormat.RichText)
        self.scope.linkActivated.connect(lambda _link: state.selection.clear_selection())
        self.scope.hide()
        self.summary = QLabel()
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.summary.setToolTip(
            "bal. MAP: class-balanced MAP (each class weighs the same); R-prec.: R-precision; "
            "med. rank: median rank of the true pair; B−A: run B less run A (green: B better)"
        )

        self.bars = {d: _plot(f"Per-class AP, {d}", "AP") for d in DIRECTIONS}
        self.diff_plot = _plot("B − A (A2V | V2A)", "AP difference")
        for w in (*self.bars.values(), self.diff_plot):
            w.setMouseEnabled(x=False, y=False)

        self.heat_plot = _plot("Class confusion of the top 10", "query class")
        self.heat_plot.setLabel("bottom", "class of the results")
        self.heat_plot.invertY(True)
        self.heat_plot.showGrid(y=False)
        self.heat = _ConfusionImage(self.select_cell)
        self.heat_plot.addItem(self.heat)
        self.heat_bar = pg.ColorBarItem(
            values=(0, 1), colorMap=pg.colormap.get("viridis"), interactive=False, width=10
        )
        self.heat_bar.setImageItem(self.heat, insert_in=self.heat_plot.getPlotItem())
        # Fixed ticks, labelled: the bar's automatic ticks, squeezed, all read "0".
        self.heat_bar.axis.setTicks([[(v, f"{v:g}") for v in (0, 0.25, 0.5, 0.75, 1)]])
        self.heat_bar.axis.setLabel("share")
        self.cell_title = QLabel(CELL_HINT)
        self.cell_title.setWordWrap(True)
        self.cell_list = QListWidget()
        self.cell_list.itemClicked.connect(self._open_list_item)

        self.failure_kind = QComboBox()
        self.failure_kind.addItems(["Lowest AP first", "Worst rank of the true pair first"])
        self.failure_kind.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.failure_kind.setMinimumContentsLength(14)
        self.failures = QTableWidget(0, 4)
        self.failures.setHorizontalHeaderLabels(["clip", "class", "AP", "pair rank"])
        self.failures.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.failures.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.failures.verticalHeader().hide()
        self.failures.horizontalHeader().setStretchLastSection(True)
        self.failures.cellClicked.connect(self._open_failure)
        self.hist_plot = _plot("Rank of the true pair", "queries")
        self.hist_plot.setMouseEnabled(x=False, y=False)
        # Its bins' labels ("51–120") need room: smaller text, and never a narrower plot.
        self.hist_plot.getAxis("bottom").setStyle(tickFont=_small_font())

        # The run pickers wrap onto a second line on a narrow window.
        self.toolbar = QWidget()
        top = FlowRow(self.toolbar)
        top.addWidget(group(QLabel("Run A"), self.run_a, stretch=1))
        top.addWidget(group(QLabel("compare with B"), self.run_b, stretch=1))
        top.addWidget(group(QLabel("Direction"), self.direction))
        self.status.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        top.addWidget(self.status)
        top.addWidget(self.scope)
        for box in (self.run_a, self.run_b):  # run names are long: the box shrinks, not the row
            box.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            box.setMinimumContentsLength(14)

        upper = QSplitter(Qt.Orientation.Horizontal)
        upper.setChildrenCollapsible(False)
        for w in (*self.bars.values(), self.diff_plot):
            upper.addWidget(w)
            upper.setStretchFactor(upper.indexOf(w), 1)
        cells = QWidget()
        cells_layout = QVBoxLayout(cells)
        cells_layout.setContentsMargins(0, 0, 0, 0)
        cells_layout.addWidget(self.cell_title)
        cells_layout.addWidget(self.cell_list)
        fails = QWidget()
        fails_layout = QGridLayout(fails)
        fails_layout.setContentsMargins(0, 0, 0, 0)
        fails_layout.addWidget(self.failure_kind, 0, 0)
        fails_layout.addWidget(self.failures, 1, 0)
        # The confusion cell's queries and the failures share a column: one list at a time,
        # each a click away (a click on a confusion cell shows its list).
        self.lists = QTabWidget()
        self.lists.addTab(fails, "Failures")
        self.lists.addTab(cells, "Confusion cell")
        lower = QSplitter(Qt.Orientation.Horizontal)
        lower.setChildrenCollapsible(False)
        for w in (self.heat_plot, self.lists, self.hist_plot):
            lower.addWidget(w)
            lower.setStretchFactor(lower.indexOf(w), 1)
        self.lists.setMinimumWidth(200)
        body = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()  # the numbers above their plots
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.summary)
        top_layout.addWidget(upper, 1)
        body.addWidget(top)
        body.addWidget(lower)
        self.upper, self.lower = upper, lower
        # Wider than the window (a comparison's table and three plots on a 1024-pixel screen),
        # the plots scroll rather than being cut off.
        self.scroll = QScrollArea()
        self.scroll.setWidget(body)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.scroll, 1)
        self._compared: bool | None = None  # whether the B - A plot had its share of the width
        self._lower_shared = False

        self.cell: tuple[int, int] | None = None
        self._shown: tuple = ()
        self._subset: tuple[tuple, tuple[Any, Any]] = ((), (None, None))
        self.run_a.currentIndexChanged.connect(self._selection_changed)
        self.run_b.currentIndexChanged.connect(self._selection_changed)
        self.direction.currentTextChanged.connect(lambda _d: self._render(force=True))
        self.failure_kind.currentIndexChanged.connect(lambda _i: self._render_failures())
        for signal in (
            state.signals.runAdded,
            state.signals.runRemoved,
            state.signals.embeddingsAdded,
        ):
            signal.connect(lambda *_a: self._refresh_runs())
        state.signals.datasetChanged.connect(self._refresh_runs)
        state.signals.currentRunChanged.connect(lambda _rid: self._refresh_runs())
        state.signals.metricsReady.connect(lambda _rid, _epoch: self._render())
        # A run starting (no metrics yet) is said in the status line.
        state.signals.runStateChanged.connect(lambda _rid: self._render(force=True))
        state.signals.currentRunChanged.connect(lambda _rid: self._render(force=True))
        state.signals.selectionChanged.connect(self._render)
        self._refresh_runs()

    # ----- what is selected ----------------------------------------------------------------------
    def _runs_with_embeddings(self) -> list[int]:
        rids = [rid for rid in self.state.runs if self.state.embeddings.embeddings_for(rid)]
        if self.state.embeddings.checkpoint_embeddings:
            rids.append(CHECKPOINT_RUN)
        return rids

    def _refresh_runs(self) -> None:
        rids = self._runs_with_embeddings()
        a, b = self.run_a.currentData(), self.run_b.currentData()
        current = self.state.runs.current_run_id
        for box in (self.run_a, self.run_b):
            box.blockSignals(True)
            box.clear()
        self.run_b.addItem("— none —", NO_RUN)
        for rid in rids:
            name = self.state.runs.run_name(rid)
            self.run_a.addItem(name, rid)
            self.run_b.addItem(name, rid)
        if a not in rids:
            a = current if current in rids else (rids[-1] if rids else None)
        self._select(self.run_a, a)
        self._select(self.run_b, b if b in rids else NO_RUN)
        for box in (self.run_a, self.run_b):
            box.blockSignals(False)
        self._selection_changed()

    @staticmethod
    def _select(box: QComboBox, rid: int | None) -> None:
        i = box.findData(rid) if rid is not None else -1
        if i >= 0:
            box.setCurrentIndex(i)

    def set_runs(self, a: int, b: int | None = None) -> None:
        """Show run ``a``, compared with ``b`` (None: no comparison)."""
        self._select(self.run_a, a)
        self._select(self.run_b, NO_RUN if b is None else b)

    def _keys(self) -> list[tuple[int, int] | None]:
        """(run id, epoch) of A and B (None where nothing is selected or embedded)."""
        out: list[tuple[int, int] | None] = []
        for box in (self.run_a, self.run_b):
            rid = box.currentData()
            epoch = self.state.embeddings.latest_epoch(rid) if rid not in (None, NO_RUN) else None
            out.append((rid, epoch) if epoch is not None else None)
        return out

    def full_metrics(self) -> tuple[Any, Any]:
        """The computed metrics of A and B over every test query (None where not computed yet or
        not chosen)."""
        a, b = self._keys()
        return (
            self.state.embeddings.metrics.get(a) if a is not None else None,
            self.state.embeddings.metrics.get(b) if b is not None else None,
        )

    def query_rows(self) -> dict[str, np.ndarray] | None:
        """Test indices of the selected queries per direction ("A2V": audio, "V2A": visual);
        None when there is no selection (every query counts)."""
        sel, full = self.state.selection.current, self.full_metrics()[0]
        if sel is None or (full is not None and len(sel) != len(full.a2v.labels)):
            return None
        return {"A2V": np.flatnonzero(sel.audio), "V2A": np.flatnonzero(sel.visual)}

    def metrics(self) -> tuple[Any, Any]:
        """The metrics shown: A's and B's, of the selected queries when there is a selection."""
        full, rows = self.full_metrics(), self.query_rows()
        if rows is None:
            return full
        key = (
            id(full[0]),
            id(full[1]),
            self.state.selection.current,
        )  # a Selection compares by identity
        if self._subset[0] != key:
            picked = tuple(
                m.subset(rows["A2V"], rows["V2A"]) if m is not None else None for m in full
            )
            self._subset = (key, picked)
        return self._subset[1]

    def _test_index(self, row: int) -> int:
        """The test index of row ``row`` of the shown metrics in the view's direction."""
        rows = self.query_rows()
        return int(row if rows is None else rows[self.direction.currentText()][row])

    def _selection_changed(self, *_args: Any) -> None:
        if self.isVisible():  # computed when looked at, not at every epoch of a run
            for key in self._keys():
                if key is not None:
                    self.state.embeddings.request_metrics(*key)
        self._render()

    # ----- rendering -----------------------------------------------------------------------------
    def _render(self, force: bool = False) -> None:
        a, b = self.metrics()
        keys = self._keys()
        full = self.full_metrics()
        shown = (
            id(full[0]),
            id(full[1]),
            self.state.selection.current,
            self.direction.currentText(),
        )
        self._render_scope(a)
        if shown == self._shown and not force:
            return
        self._shown = shown
        waiting = [k for k in keys if k is not None and k not in self.state.embeddings.metrics]
        run = self.state.runs.current_run
        if keys[0] is None and run is not None and run.state == "starting":
            self.status.setText(f"{run.starting_text} Its test metrics follow its first epoch.")
        elif keys[0] is None:
            self.status.setText("Train a run or load a checkpoint to see its test metrics.")
        elif waiting:
            self.status.setText("Computing the test metrics…")
        else:
            self.status.setText(f"test split, epoch {keys[0][1]} of {self._name(0)}")
        self._render_summary(a, b)
        self._render_bars(a, b)
        self._render_confusion(a)
        self._render_failures()
        self._render_histogram(a)
        for plot in self.plots().values():
            # the histogram's bin labels ("51–120") need more room than ten classes' digits
            _keep_whole(plot, 230 if plot is self.hist_plot else PLOT_MIN_WIDTH)

    def _render_scope(self, a: Any) -> None:
        rows = self.query_rows()
        self.scope.setVisible(rows is not None and a is not None)
        if rows is None or a is None:
            return
        n = len(self.full_metrics()[0].a2v.labels)
        na, nv = len(rows["A2V"]), len(rows["V2A"])
        counts = (
            f"{na} of {n} queries"
            if na == nv
            else f"{na} of {n} A2V queries, {nv} of {n} V2A queries"
        )
        self.scope.setText(f"<b>selection: {counts}</b> · <a href='all'>show all</a>")

    def _name(self, which: int) -> str:
        box = self.run_a if which == 0 else self.run_b
        return box.currentText()

    def _color(self, which: int) -> QColor:
        return RUN_COLORS[which]

    def _class_names(self) -> list[str]:
        data = self.state.catalog.dataset
        return list(data.class_names) if data is not None else []

    def _present_classes(self, m: Any) -> np.ndarray:
        return np.union1d(m.a2v.labels, m.v2a.labels)

    def _render_summary(self, a: Any, b: Any) -> None:
        if a is None:
            self.summary.setText("")
            return

        def cell(x: float, name: str) -> str:
            return "–" if x != x else f"{x:.{1 if name == 'median rank' else 3}f}"

        rows = {d: getattr(a, d.lower()).headline() for d in DIRECTIONS}
        rows_b = {d: getattr(b, d.lower()).headline() for d in DIRECTIONS} if b else None
        # One column per number, one row per direction (and B - A per direction): a wide, low
        # table above the plots leaves them the width (a tall one beside them squeezed them).
        names = [name for name, _ in rows["A2V"]]
        head = "<tr><th></th>" + "".join(f"<th>{SHORT_NAMES.get(n, n)}</th>" for n in names)
        swatch = "<span style='color:{}'>■</span> "
        lines = [swatch.format(RUN_COLORS[0].name()) + f"<b>A: {self._name(0)}</b>"]
        if b is not None:
            lines.append(
                " &nbsp; " + swatch.format(RUN_COLORS[1].name()) + f"<b>B: {self._name(1)}</b>"
            )
        lines.append(f"<table cellspacing='3'>{head}</tr>")
        for d in DIRECTIONS:
            tds = "".join(f"<td align='right'>{cell(v, n)}</td>" for n, v in rows[d])
            lines.append(f"<tr><td>{d}</td>{tds}</tr>")
        for d in DIRECTIONS if rows_b else ():
            tds = ""
            for (name, va), (_, vb) in zip(rows[d], rows_b[d], strict=True):  # type: ignore[index]
                delta = vb - va
                better = delta < 0 if name == "median rank" else delta > 0
                color = GAIN.name() if better else LOSS.name() if delta else "#000000"
                tds += f"<td align='right' style='color:{color}'>{cell(delta, name)}</td>"
            lines.append(f"<tr><td>B−A {d}</td>{tds}</tr>")
        lines.append("</table>")
        self.summary.setText("".join(lines))

    def _render_bars(self, a: Any, b: Any) -> None:
        names = self._class_names()
        for w in (*self.bars.values(), self.diff_plot):
            w.clear()
        self.diff_plot.setVisible(b is not None)
        self._share_upper_row(b is not None)
        if a is None:
            return
        classes = self._present_classes(a)
        x = np.arange(len(classes), dtype=np.float64)
        ticks = [[(i, names[c] if c < len(names) else str(c)) for i, c in enumerate(classes)]]
        width = 0.38 if b is not None else 0.7
        for d in DIRECTIONS:
            plot = self.bars[d]
            for which, m in enumerate((a, b)):
                if m is None:
                    continue
                ap = np.nan_to_num(getattr(m, d.lower()).class_ap()[classes])
                offset = (which - 0.5) * width if b is not None else 0.0
                plot.addItem(
                    pg.BarGraphItem(x=x + offset, height=ap, width=width, brush=self._color(which))
                )
            plot.getAxis("bottom").setTicks(ticks)
            plot.setYRange(0, 1, padding=0.02)
            plot.setXRange(-0.6, len(classes) - 0.4, padding=0)
        if b is not None:
            for k, d in enumerate(DIRECTIONS):
                diff = getattr(b, d.lower()).class_ap() - getattr(a, d.lower()).class_ap()
                diff = np.nan_to_num(diff[classes])
                brushes = [GAIN if v >= 0 else LOSS for v in diff]
                # A2V left and solid, V2A right and lighter: both directions in one plot.
                if k == 1:
                    brushes = [QColor(c.red(), c.green(), c.blue(), 120) for c in brushes]
                self.diff_plot.addItem(
                    pg.BarGraphItem(
                        x=x + (k - 0.5) * 0.38, height=diff, width=0.38, brushes=brushes
                    )
                )
            self.diff_plot.getAxis("bottom").setTicks(ticks)
            self.diff_plot.setXRange(-0.6, len(classes) - 0.4, padding=0)

    def _share_upper_row(self, compared: bool) -> None:
        """The plots of the upper row in equal shares (redone when the B - A plot comes or goes,
        not at every render: a dragged splitter stays)."""
        if compared == self._compared or self.upper.width() <= 0:
            return
        self._compared = compared
        n = 3 if compared else 2
        self.upper.setSizes([self.upper.width() // n] * n + ([] if compared else [0]))

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if not self._lower_shared and self.lower.width() > 0:  # equal thirds, once laid out
            self._lower_shared = True
            self.lower.setSizes([self.lower.width() // 3] * 3)
        if self._compared is None:
            self._share_upper_row(self.diff_plot.isVisibleTo(self))

    def _direction_metrics(self, m: Any) -> Any:
        return getattr(m, self.direction.currentText().lower()) if m is not None else None

    def _render_confusion(self, a: Any) -> None:
        d = self._direction_metrics(a)
        self.cell_list.clear()
        self.cell = None
        self.cell_title.setText(CELL_HINT)
        if d is None:
            self.heat.clear()
            return
        confusion = np.nan_to_num(d.confusion())
        self.heat.setImage(confusion, autoLevels=False, levels=(0, 1))
        n = confusion.shape[0]
        self.heat_plot.setRange(xRange=(0, n), yRange=(0, n), padding=0.02)
        names = self._class_names()
        ticks = [[(i + 0.5, names[i] if i < len(names) else str(i)) for i in range(n)]]
        for axis in ("left", "bottom"):
            self.heat_plot.getAxis(axis).setTicks(ticks)
        self.heat_plot.setTitle(
            f"Top-{d.k} class confusion, {self.direction.currentText()}", size="9pt"
        )

    def select_cell(self, row: int, col: int) -> None:
        """List the queries of class ``row`` whose top k hold class ``col``."""
        d = self._direction_metrics(self.metrics()[0])
        if d is None:
            return
        self.cell = (row, col)
        self.lists.setCurrentIndex(self.lists.indexOf(self.cell_list.parentWidget()))
        names = self._class_names()
        listed = d.queries_retrieving(row, col)
        counts = d.topk_counts[listed, col]
        listed = [self._test_index(i) for i in listed]
        self.cell_title.setText(
            f"{len(listed)} queries of class “{names[row]}” with class “{names[col]}” in "
            f"their top {d.k} (click one to open it)"
        )
        self.cell_list.clear()
        for index, count in zip(listed, counts, strict=True):
            item = QListWidgetItem(
                f"{self.state.catalog.item_name('test', int(index))} · {count}/{d.k}"
            )
            item.setData(Qt.ItemDataRole.UserRole, int(index))
            self.cell_list.addItem(item)

    def listed_queries(self) -> list[int]:
        """Test indices in the confusion cell's list, in order."""
        return [
            self.cell_list.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.cell_list.count())
        ]

    def _render_failures(self) -> None:
        d = self._direction_metrics(self.metrics()[0])
        self.failures.setRowCount(0)
        if d is None:
            return
        if self.failure_kind.currentIndex() == 0:
            order = d.lowest_ap(FAILURES)
        else:
            order = d.worst_ranked(FAILURES)
        names = self._class_names()
        self.failures.setRowCount(len(order))
        for row, i in enumerate(order):
            ap, index = d.ap[i], self._test_index(i)
            cells = [
                self.state.catalog.item_name("test", index),
                names[d.labels[i]],
                "–" if ap != ap else f"{ap:.3f}",
                str(int(d.partner_rank[i])),
            ]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, int(index))
                self.failures.setItem(row, col, item)
        self.failures.resizeColumnsToContents()

    def _render_histogram(self, a: Any) -> None:
        self.hist_plot.clear()
        d = self._direction_metrics(a)
        if d is None or not len(d.partner_rank):
            return
        # Ranks run over the whole gallery, with or without a selection of queries.
        edges, labels = rank_bins(len(self.full_metrics()[0].a2v.labels))
        counts = np.bincount(
            np.searchsorted(edges, d.partner_rank, side="right") - 1, minlength=len(edges)
        )
        x = np.arange(len(edges), dtype=np.float64)
        self.hist_plot.addItem(pg.BarGraphItem(x=x, height=counts, width=0.8, brush=self._color(0)))
        self.hist_plot.getAxis("bottom").setTicks([list(enumerate(labels))])
        self.hist_plot.setTitle(
            f"True-pair rank, {self.direction.currentText()} (median {d.median_rank():.0f})",
            size="9pt",
        )

    # ----- intents -------------------------------------------------------------------------------
    def open_query(self, index: int) -> None:
        """Open test item ``index`` as the query in the view's direction."""
        self.state.retrieval.set_item_query(
            "test", index, modality_of(self.direction.currentText())
        )
        self.queryOpened.emit()

    def _open_list_item(self, item: QListWidgetItem) -> None:
        self.open_query(int(item.data(Qt.ItemDataRole.UserRole)))

    def _open_failure(self, row: int, _col: int) -> None:
        item = self.failures.item(row, 0)
        if item is not None:
            self.open_query(int(item.data(Qt.ItemDataRole.UserRole)))

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self._selection_changed()

    def plots(self) -> dict[str, pg.PlotWidget]:
        return {
            "Per-class AP A2V": self.bars["A2V"],
            "Per-class AP V2A": self.bars["V2A"],
            "Per-class AP difference": self.diff_plot,
            "Class confusion": self.heat_plot,
            "True-pair rank histogram": self.hist_plot,
        }
