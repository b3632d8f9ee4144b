"""Selections in the app: lasso and box on the map, the legend, the table, and what they drive."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from avexplorer.projections import Layout

SHIFT = Qt.KeyboardModifier.ShiftModifier
CTRL = Qt.KeyboardModifier.ControlModifier
NONE = Qt.KeyboardModifier.NoModifier


def _mouse(widget, kind, pos: QPoint, buttons, modifiers) -> None:
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    event = QMouseEvent(
        kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, buttons, modifiers
    )
    QApplication.sendEvent(widget, event)


def drag(qtbot, m, points_xy, modifiers=NONE) -> None:
    """Press at the first data point, move through the others, release at the last (pyqtgraph
    takes at most one move per 10 ms: the moves are spaced out)."""
    vb = m.plot.getViewBox()
    view = m.plot.viewport()
    px = [m.plot.mapFromScene(vb.mapViewToScene(QPointF(x, y))) for x, y in points_xy]
    left = Qt.MouseButton.LeftButton
    _mouse(view, QEvent.Type.MouseButtonPress, px[0], left, modifiers)
    for p in px[1:]:
        qtbot.wait(20)
        _mouse(view, QEvent.Type.MouseMove, p, left, modifiers)
    _mouse(view, QEvent.Type.MouseButtonRelease, px[-1], Qt.MouseButton.NoButton, modifiers)


def circle(cx, cy, r, k=24):
    t = np.linspace(0, 2 * np.pi, k)
    return list(zip(cx + r * np.cos(t), cy + r * np.sin(t), strict=True))


def clustered_layout(qtbot, window) -> tuple[np.ndarray, Layout]:
    """A layout with each class at its own corner: audio and visual of class c near centre c."""
    labels = window.state.dataset.test.labels
    n = len(labels)
    centres = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]])
    rng = np.random.default_rng(0)
    coords = np.vstack([centres[labels], centres[labels]]) + rng.uniform(-1, 1, (2 * n, 2))
    layout = Layout(0, "pca", coords, np.ones(2 * n, np.int64))
    window.map.show_layout(layout)
    window.map.plot.getViewBox().autoRange(padding=0.1)
    qtbot.wait(20)
    return labels, layout


def test_a_lasso_over_a_cluster_selects_exactly_its_points(qtbot, loaded):
    m, s = loaded.map, loaded.state
    loaded.tabs.setCurrentIndex(1)
    labels, _ = clustered_layout(qtbot, loaded)
    m.tools.button(1).click()  # Lasso
    drag(qtbot, m, circle(20, 0, 2.5))
    assert s.selection is not None
    assert np.array_equal(s.selection.audio, labels == 1)
    assert np.array_equal(s.selection.visual, labels == 1)
    # The rest is greyed, not hidden: every point is still drawn, the selected ones on top.
    assert len(m.points) == 2 * len(labels)
    grey = {2 * len(s.colors), 2 * len(s.colors) + 1}
    assert set(m.points.style[: -s.selection.count]) <= grey
    assert not set(m.points.style[-s.selection.count :]) & grey
    assert m.selection_label.text() == f"{s.selection.count} selected"

    m.tools.button(2).click()  # Box, Shift adds
    drag(qtbot, m, [(-2.5, 17.5), (2.5, 22.5)], SHIFT)
    assert np.array_equal(s.selection.audio, np.isin(labels, [1, 2]))
    m.tools.button(0).click()  # Pan: a Ctrl-drag still lassoes, and subtracts
    drag(qtbot, m, circle(0, 20, 2.5), CTRL)
    assert np.array_equal(s.selection.visual, labels == 1)
    m.tools.button(0).click()
    drag(qtbot, m, [(18, 0), (6, 6)])  # a plain drag pans, the selection stays
    assert np.array_equal(s.selection.audio, labels == 1)

    m.setFocus()
    qtbot.keyClick(m, Qt.Key.Key_Escape)
    assert s.selection is None
    assert set(m.points.style) & grey == set()


def test_a_legend_click_selects_the_class_and_shift_adds(qtbot, loaded):
    m, s = loaded.map, loaded.state
    labels = s.dataset.test.labels
    assert "href='class:2'" in m.legend_label.text()
    m.legend_label.linkActivated.emit("class:2")
    assert np.array_equal(s.selection.audio, labels == 2)
    s.select_class(3, "add")
    assert np.array_equal(s.selection.visual, np.isin(labels, [2, 3]))
