"""The Metrics view on a loaded checkpoint: numbers from core, a confusion cell's queries, and
one click from a listed query or a failure to the retrieval view."""

import numpy as np
from PySide6.QtCore import QPointF, Qt

from avexplorer.state.run import CHECKPOINT_RUN
from core.evaluation.metrics import cross_modal_metrics


def _show_metrics(qtbot, window):
    window.tabs.setCurrentWidget(window.metrics_view)
    state = window.state
    rid, epoch = CHECKPOINT_RUN, state.embeddings.latest_epoch(CHECKPOINT_RUN)
    qtbot.waitUntil(
        lambda: (rid, epoch) in state.embeddings.metrics or window.last_error is not None,
        timeout=60_000,
    )
    assert window.last_error is None, window.last_error
    qtbot.waitUntil(lambda: window.metrics_view.metrics()[0] is not None, timeout=5_000)
    return window.metrics_view, state.embeddings.embeddings_for(rid)[epoch]


def _click_cell(qtbot, view, row: int, col: int) -> None:
    plot = view.heat_plot
    qtbot.waitExposed(plot)
    qtbot.wait(50)  # let the window settle its layout, then fix the view's transform to it
    plot.getViewBox().prepareForPaint()
    scene_pos = view.heat.mapToScene(QPointF(col + 0.5, row + 0.5))
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=plot.mapFromScene(scene_pos))


def test_clicking_a_confusion_cell_lists_the_queries_whose_top_10_hold_that_class(qtbot, loaded):
    view, emb = _show_metrics(qtbot, loaded)
    labels = loaded.state.catalog.dataset.test.labels
    expected_metrics = cross_modal_metrics(emb.audio, emb.visual, labels)
    np.testing.assert_allclose(view.metrics()[0].a2v.ap, expected_metrics.a2v.ap)

    # Brute force: each audio query's 10 nearest visual items, and their classes.
    sims = emb.audio @ emb.visual.T
    top10 = np.argsort(-sims, axis=1, kind="stable")[:, :10]
    retrieved = labels[top10]
    # The most confused pair of classes (off the diagonal).
    confusion = np.zeros((4, 4))
    np.add.at(confusion, (np.repeat(labels, 10), retrieved.ravel()), 1)
    np.fill_diagonal(confusion, -1)
    row, col = np.unravel_index(int(np.argmax(confusion)), confusion.shape)
    wanted = {i for i in range(len(labels)) if labels[i] == row and (retrieved[i] == col).any()}
    assert wanted
    _click_cell(qtbot, view, row, col)
    assert view.cell == (row, col)
    listed = view.listed_queries()
    assert set(listed) == wanted
    counts = [int((retrieved[i] == col).sum()) for i in listed]
    assert counts == sorted(counts, reverse=True)  # most confused first
    # The heatmap's row is the share of each class among the class's top-10 results.
    shares = np.bincount(retrieved[labels == row].ravel(), minlength=4) / (
        10 * (labels == row).sum()
    )
    np.testing.assert_allclose(view.heat.image[row], shares)

    # One click on a listed query opens it in the retrieval view.
    view.cell_list.itemClicked.emit(view.cell_list.item(0))
    q = loaded.state.retrieval.query
    assert (q.split, q.index) == ("test", listed[0]) and loaded.state.retrieval.direction == "A2V"
    assert loaded.tabs.currentWidget() is loaded.explore_split
    assert loaded.state.retrieval.results is not None


def test_failure_browser_and_rank_histogram(qtbot, loaded):
    view, _ = _show_metrics(qtbot, loaded)
    view.direction.setCurrentText("V2A")
    d = view.metrics()[0].v2a
    view.failure_kind.setCurrentIndex(1)  # worst rank of the true pair
    ranks = [int(view.failures.item(r, 3).text()) for r in range(view.failures.rowCount())]
    assert ranks == sorted(ranks, reverse=True) and ranks[0] == d.partner_rank.max()
    view.failure_kind.setCurrentIndex(0)  # lowest AP
    worst = int(np.nanargmin(d.ap))
    assert view.failures.item(0, 0).data(Qt.ItemDataRole.UserRole) == worst
    view.failures.cellClicked.emit(0, 1)
    assert loaded.state.retrieval.query.index == worst and loaded.state.retrieval.direction == "V2A"
    bars = [i for i in view.hist_plot.getPlotItem().items if hasattr(i, "opts")]
    assert sum(bars[0].opts["height"]) == len(d.partner_rank)


def test_two_runs_side_by_side(qtbot, loaded):
    """The same checkpoint as A and B: every difference is zero, and the difference plot shows."""
    view, _ = _show_metrics(qtbot, loaded)
    rid = CHECKPOINT_RUN
    view.set_runs(rid, rid)
    a, b = view.metrics()
    assert b is a and view.diff_plot.isVisible()
    assert "B−A" in view.summary.text()
