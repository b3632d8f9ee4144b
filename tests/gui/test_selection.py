"""Selections in the app: lasso and box on the map, the legend, the table, and what they drive."""

from __future__ import annotations

from pathlib import Path

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
    labels = window.state.catalog.dataset.test.labels
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
    assert s.selection.current is not None
    assert np.array_equal(s.selection.current.audio, labels == 1)
    assert np.array_equal(s.selection.current.visual, labels == 1)
    # The rest is greyed, not hidden: every point is still drawn, the selected ones on top.
    assert len(m.points) == 2 * len(labels)
    grey = {2 * len(s.catalog.colors), 2 * len(s.catalog.colors) + 1}
    drawn = m.points.style[m.points.order]
    assert set(drawn[: -s.selection.current.count]) <= grey
    assert not set(drawn[-s.selection.current.count :]) & grey
    assert m.selection_label.text() == f"{s.selection.current.count} selected"

    m.tools.button(2).click()  # Box, Shift adds
    drag(qtbot, m, [(-2.5, 17.5), (2.5, 22.5)], SHIFT)
    assert np.array_equal(s.selection.current.audio, np.isin(labels, [1, 2]))
    m.tools.button(0).click()  # Pan: a Ctrl-drag still lassoes, and subtracts
    drag(qtbot, m, circle(0, 20, 2.5), CTRL)
    assert np.array_equal(s.selection.current.visual, labels == 1)
    m.tools.button(0).click()
    drag(qtbot, m, [(18, 0), (6, 6)])  # a plain drag pans, the selection stays
    assert np.array_equal(s.selection.current.audio, labels == 1)

    m.setFocus()
    qtbot.keyClick(m, Qt.Key.Key_Escape)
    assert s.selection.current is None
    assert set(m.points.style) & grey == set() and m.points.order is None


def test_a_legend_click_selects_the_class_and_shift_adds(qtbot, loaded):
    m, s = loaded.map, loaded.state
    labels = s.catalog.dataset.test.labels
    assert "href='class:2'" in m.legend_label.text()
    m.legend_label.linkActivated.emit("class:2")
    assert np.array_equal(s.selection.current.audio, labels == 2)
    s.selection.select_class(3, "add")
    assert np.array_equal(s.selection.current.visual, np.isin(labels, [2, 3]))


def test_the_selection_view_counts_queries_with_its_mean_and_filters_the_table(qtbot, loaded):
    s, panel, table = loaded.state, loaded.selection_panel, loaded.dataset_panel
    labels = s.catalog.dataset.test.labels
    n = len(labels)
    audio = labels == 1
    visual = (labels == 1) | (labels == 2)
    s.selection.select(_selection(audio, visual))
    qtbot.waitUntil(lambda: panel.summary is not None, timeout=5_000)  # on the next loop turn
    sm = panel.summary
    assert sm.audio_per_class.tolist() == np.bincount(labels[audio], minlength=4).tolist()
    assert sm.visual_per_class[2] == (labels == 2).sum()
    assert len(sm.split_pairs) == (labels == 2).sum() and sm.audio_only == 0
    assert f"{audio.sum() + visual.sum()} selected" in panel.headline.text()
    assert panel.table.rowCount() == 2  # only the classes present
    g = s.retrieval.gallery
    rows = np.vstack([g.audio[audio], g.visual[visual]])
    sims = rows @ rows.T
    expected = (sims.sum() - np.trace(sims)) / (len(rows) * (len(rows) - 1))
    assert abs(sm.mean_similarity - expected) < 1e-5
    assert (
        f"{expected:.3f}" in panel.similarity.text() and "whole test set" in panel.similarity.text()
    )
    assert "pairs split" in panel.split.text()

    # The table shows the selection's clips only (the split pairs' clips included).
    assert table.selection_only.isChecked()
    assert table.proxy.rowCount() == int(visual.sum())

    panel.query_audio.click()  # A2V with the mean of the selected audio
    assert (
        s.retrieval.direction == "A2V"
        and s.retrieval.results is not None
        and s.retrieval.results.hits is None
    )
    mean = g.audio[audio].mean(axis=0)
    best = int(np.argmax(g.visual @ (mean / np.linalg.norm(mean))))
    assert int(s.retrieval.results.indices[0]) == best
    assert "selection" in loaded.retrieval.query_label.text()
    # Results in the selection (their visual side, for an A2V query) are in bold.
    retrieval = loaded.retrieval
    for row, i in enumerate(s.retrieval.results.indices):
        assert retrieval.table.item(row, 1).font().bold() == bool(visual[int(i)])
    panel.query_visual.click()  # V2A with the visual mean
    assert s.retrieval.direction == "V2A" and s.retrieval.results.modality == "visual"
    mean = g.visual[visual].mean(axis=0)
    assert int(s.retrieval.results.indices[0]) == int(np.argmax(g.audio @ mean))

    panel.clear_button.click()
    assert s.selection.current is None and table.proxy.rowCount() == table.model.rowCount()
    qtbot.waitUntil(lambda: panel.summary is None, timeout=5_000)
    assert not table.selection_only.isEnabled() and panel.table.rowCount() == 0
    assert s.retrieval.query is not None  # clearing the selection keeps the query
    assert n == len(g.audio)


def _selection(audio, visual):
    from core.exploration.selection import Selection

    return Selection(audio, visual)


def test_several_table_rows_become_the_selection(qtbot, loaded):
    from PySide6.QtCore import QItemSelection, QItemSelectionModel

    s, table = loaded.state, loaded.dataset_panel
    rows = [r for r, (split, _i) in enumerate(table.model.rows) if split == "test"][:3]
    rows.append(0)  # a train row: left out, with a message
    messages = []
    s.signals.message.connect(messages.append)
    sel = QItemSelection()
    for r in rows:
        index = table.proxy.mapFromSource(table.model.index(r, 0))
        sel.select(index, index)
    flags = (
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
    )
    table.table.selectionModel().select(sel, flags)
    assert s.selection.current.clips().tolist() == [0, 1, 2]
    assert s.selection.current.count == 6  # both sides of each clip
    assert any("train/val rows left out" in m for m in messages)
    assert not table.selection_only.isChecked()  # the table does not filter away its own rows


def test_exports_from_the_app_round_trip_and_a_bad_target_says_so(qtbot, loaded, tmp_path):
    from core.data.dataset import load_h5

    s = loaded.state
    errors = []
    s.signals.error.connect(lambda title, msg: errors.append((title, msg)))
    s.selection.select_class(3)
    clips = np.flatnonzero(s.catalog.dataset.test.labels == 3)
    done = []
    s.signals.message.connect(lambda m: done.append(m) if m.startswith("Exported") else None)
    for kind in ("csv", "npz", "h5"):
        s.selection.export_selection(kind, str(tmp_path / f"sel.{kind}"))
    qtbot.waitUntil(lambda: len(done) == 3, timeout=10_000)
    assert not errors
    npz = np.load(tmp_path / "sel.npz")
    assert np.array_equal(npz["audio"], s.retrieval.gallery.audio[clips])
    sub = load_h5(tmp_path / "sel.h5")
    assert np.array_equal(sub.test.visual, s.catalog.dataset.test.visual[clips])
    text = (tmp_path / "sel.csv").read_text().splitlines()
    assert len(text) == 1 + len(clips) and s.catalog.item_name("test", int(clips[0])) in text[1]

    # Onto the open dataset, or into a file posing as a folder: refused, nothing written.
    source = s.catalog.dataset.source
    before = Path(source).read_bytes()
    s.selection.export_selection("h5", source)
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    s.selection.export_selection("csv", str(blocker / "sel.csv"))
    qtbot.waitUntil(lambda: len(errors) == 2, timeout=10_000)
    assert all(title == "Selection not exported" for title, _ in errors)
    assert "is the open dataset" in errors[0][1] or "is the open dataset" in errors[1][1]
    assert Path(source).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("sel")) == [
        "sel.csv",
        "sel.h5",
        "sel.npz",
    ]


def test_named_selections_are_saved_with_the_dataset_and_loaded_back(qtbot, loaded, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    s, panel = loaded.state, loaded.selection_panel
    s.selection.select_class(0)
    s.selection.select_points(
        np.r_[np.zeros(len(s.catalog.dataset.test), bool), s.catalog.dataset.test.labels == 1],
        "add",
    )
    kept = s.selection.current
    qtbot.waitUntil(panel.save_button.isEnabled, timeout=5_000)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("dogs and cats", True))
    panel.save_button.click()
    path = s.selection.selections_file()
    assert path.parent == Path(s.catalog.dataset.source).parent
    assert [panel.saved.itemText(i) for i in range(panel.saved.count())] == ["dogs and cats"]
    s.selection.clear_selection()
    panel.load_button.click()
    assert s.selection.current.equals(kept)
