"""The app on a 1024 x 768 screen: the window fits it, and every view's controls and plots are on
screen (or inside a scroll area) and drawn whole; at 1280 x 800 a Metrics comparison needs no
scrolling."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QScrollArea, QWidget

from avexplorer.state.run import CHECKPOINT_RUN
from tests.gui.conftest import small_config

SMALL = (1024, 730)  # a 1024 x 768 screen less a title bar and a panel
LAPTOP = (1280, 760)


def _inside_window(window, widget: QWidget) -> bool:
    rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    return window.rect().contains(rect)


def reachable(window, widget: QWidget) -> bool:
    """Shown, and either wholly inside the window or inside a scroll area that is."""
    if not widget.isVisibleTo(window):
        return False
    parent = widget.parentWidget()
    while parent is not None and parent is not window:
        if isinstance(parent, QScrollArea):
            return _inside_window(window, parent)
        parent = parent.parentWidget()
    return _inside_window(window, widget)


def drawn_whole(view) -> bool:
    """A pyqtgraph view is at least as wide and high as its contents' minimum: titles, axes and
    colour bars are not cut off at its edges."""
    item = view.getPlotItem() if hasattr(view, "getPlotItem") else view.ci
    least = item.effectiveSizeHint(Qt.SizeHint.MinimumSize)
    return least.width() <= view.width() + 1 and least.height() <= view.height() + 1


def _least(view):
    item = view.getPlotItem() if hasattr(view, "getPlotItem") else view.ci
    return item.effectiveSizeHint(Qt.SizeHint.MinimumSize)


def _show(qtbot, window, widget) -> None:
    window.tabs.setCurrentWidget(widget)
    qtbot.wait(50)  # the tab's layout, and the wrapping rows' second pass


def _fit(qtbot, window, size) -> None:
    hint = window.minimumSizeHint()
    assert hint.width() <= size[0] and hint.height() <= size[1], hint
    window.resize(*size)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == size, timeout=5_000)
    qtbot.wait(50)


def test_training_and_explore_fit_a_1024_by_768_screen(qtbot, window):
    small_config(window, "psd", epochs=12)  # curves, legends and tick labels, as in a session
    window.state.runs.request_training(window.training_panel.config())
    qtbot.waitUntil(lambda: not window.jobs.training, timeout=20_000)
    _fit(qtbot, window, SMALL)
    _show(qtbot, window, window.training_split)
    window.plots.refresh()
    window.heatmaps._pending = True
    window.heatmaps.refresh()
    qtbot.wait(50)
    for name, plot in window.plots.plots().items():
        assert reachable(window, plot), name
        assert drawn_whole(plot), (name, plot.size(), _least(plot))
    heat = window.heatmaps
    assert reachable(window, heat.view) and drawn_whole(heat.view), heat.view.width()
    for matrix in (heat.teacher, heat.student):  # the colour bars inside the view
        bar = matrix.bar.mapRectToScene(matrix.bar.boundingRect())
        assert heat.view.viewport().rect().contains(heat.view.mapFromScene(bar).boundingRect())
    panel = window.training_panel
    for control in (panel.start_button, panel.stop_button, panel.runs, panel.delete_button):
        assert reachable(window, control)
    assert reachable(window, window.statusBar())
    assert reachable(window, window.task_label) and reachable(window, window.device_label)
    # The MAP plot's legend lists this run's four curves, under the curves, not over them.
    legend = window.plots.map_legend
    assert {item[1].text for item in legend.items} == {"avg", "A2V", "V2A", "R@1"}
    view_box = window.plots.map_plot.getViewBox().sceneBoundingRect()
    assert not legend.sceneBoundingRect().intersects(view_box)

    _show(qtbot, window, window.explore_split)
    m, r = window.map, window.retrieval
    for control in (m.toolbar, m.method_box, m.epoch_label, r.file_button, r.direction, r.table):
        assert reachable(window, control)
    assert drawn_whole(m.plot)
    for dock in (window.dataset_dock, window.selection_dock):
        assert reachable(window, dock)
    for button in (window.selection_panel.query_audio, window.selection_panel.query_visual):
        assert reachable(window, button)


def test_metrics_and_labels_fit_a_1024_by_768_screen(qtbot, loaded):
    view = loaded.metrics_view
    _fit(qtbot, loaded, SMALL)
    _show(qtbot, loaded, view)
    epoch = loaded.state.embeddings.latest_epoch(CHECKPOINT_RUN)
    qtbot.waitUntil(
        lambda: (CHECKPOINT_RUN, epoch) in loaded.state.embeddings.metrics, timeout=60_000
    )
    view.set_runs(CHECKPOINT_RUN, CHECKPOINT_RUN)  # a comparison: its table and a third plot
    qtbot.waitUntil(lambda: view.diff_plot.isVisible(), timeout=5_000)
    qtbot.wait(50)
    for name, plot in view.plots().items():
        assert reachable(loaded, plot), name
        assert drawn_whole(plot), (name, plot.size(), _least(plot))
    for control in (view.run_a, view.run_b, view.direction, view.summary, view.lists):
        assert reachable(loaded, control)
    # The colour bar's labels are its own, not all "0".
    ticks = view.heat_bar.axis._tickLevels[0]
    assert [text for _v, text in ticks] == ["0", "0.25", "0.5", "0.75", "1"]

    lab = loaded.labelling_view
    _show(qtbot, loaded, lab)
    for control in (
        lab.table,
        lab.play_button,
        lab.accept_button,
        lab.class_box,
        lab.next_button,
        lab.prev_button,
        lab.save_button,
        lab.retrain_button,
    ):
        assert reachable(loaded, control)


@pytest.mark.parametrize("compare", [False, True])
def test_metrics_need_no_scrolling_at_1280_by_800(qtbot, loaded, compare):
    view = loaded.metrics_view
    _fit(qtbot, loaded, LAPTOP)
    _show(qtbot, loaded, view)
    epoch = loaded.state.embeddings.latest_epoch(CHECKPOINT_RUN)
    qtbot.waitUntil(
        lambda: (CHECKPOINT_RUN, epoch) in loaded.state.embeddings.metrics, timeout=60_000
    )
    if compare:
        view.set_runs(CHECKPOINT_RUN, CHECKPOINT_RUN)
        qtbot.waitUntil(lambda: view.diff_plot.isVisible(), timeout=5_000)
    qtbot.wait(50)
    assert view.scroll.horizontalScrollBar().maximum() == 0
    for name, plot in view.plots().items():
        if plot.isVisible():
            assert drawn_whole(plot), (name, plot.size(), _least(plot))
