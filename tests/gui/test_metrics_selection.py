"""The Metrics tab follows the map's selection: the numbers of the selected queries only (against
the full gallery), a caption saying how many, and every query again once the selection clears."""

import numpy as np
from PySide6.QtCore import Qt

from core.evaluation.metrics import direction_metrics
from core.exploration.selection import Selection
from tests.gui.test_metrics_view import _show_metrics


def _bar_heights(plot) -> np.ndarray:
    bars = [i for i in plot.getPlotItem().items if hasattr(i, "opts")]
    return np.asarray(bars[0].opts["height"])


def _failure_indices(view) -> list[int]:
    return [
        view.failures.item(r, 0).data(Qt.ItemDataRole.UserRole)
        for r in range(view.failures.rowCount())
    ]


def test_metrics_of_the_selected_queries_and_back_to_all(qtbot, loaded):
    view, emb = _show_metrics(qtbot, loaded)
    state = loaded.state
    labels = state.catalog.dataset.test.labels
    n = len(labels)
    full = view.metrics()[0]
    full_summary = view.summary.text()
    assert not view.scope.isVisible()

    # Audio of class 1, visual of classes 1 and 2: the two directions have different queries.
    audio_rows = np.flatnonzero(labels == 1)
    visual_rows = np.flatnonzero(np.isin(labels, [1, 2]))
    state.selection.select(Selection(labels == 1, np.isin(labels, [1, 2])))
    assert view.scope.isVisible()
    assert view.scope.text().startswith(
        f"<b>selection: {len(audio_rows)} of {n} A2V queries, {len(visual_rows)} of {n} V2A"
    )

    # Core on just those queries, each ranked against the full gallery.
    expected = {
        "A2V": direction_metrics(
            emb.audio[audio_rows], emb.visual, labels[audio_rows], labels, partners=audio_rows
        ),
        "V2A": direction_metrics(
            emb.visual[visual_rows], emb.audio, labels[visual_rows], labels, partners=visual_rows
        ),
    }
    shown = view.metrics()[0]
    for d, want in expected.items():
        got = getattr(shown, d.lower())
        for (name, value), (_, wanted) in zip(got.headline(), want.headline(), strict=True):
            np.testing.assert_allclose(value, wanted, err_msg=f"{d} {name}")
            if name == "MAP":
                assert f"{wanted:.3f}" in view.summary.text()
    assert view.summary.text() != full_summary
    # Per-class AP bars: only the selected classes, at the selected queries' AP.
    np.testing.assert_allclose(_bar_heights(view.bars["A2V"]), [expected["A2V"].class_ap()[1], 0])
    np.testing.assert_allclose(
        _bar_heights(view.bars["V2A"]), np.nan_to_num(expected["V2A"].class_ap()[[1, 2]])
    )

    for d, rows in (("A2V", audio_rows), ("V2A", visual_rows)):
        view.direction.setCurrentText(d)
        want = expected[d]
        # Confusion of the selected queries' top 10 only.
        np.testing.assert_allclose(view.heat.image, np.nan_to_num(want.confusion()))
        # The failure browser lists selected clips only, by their test index, worst AP first.
        view.failure_kind.setCurrentIndex(0)
        assert _failure_indices(view) == [int(rows[i]) for i in want.lowest_ap(50)]
        # The rank histogram counts the selected queries.
        assert _bar_heights(view.hist_plot).sum() == len(rows)
        # A confusion cell lists selected queries, and opens the right test clip.
        view.select_cell(1, 1)
        listed = view.listed_queries()
        assert listed == [int(rows[i]) for i in want.queries_retrieving(1, 1)] and listed
        view.cell_list.itemClicked.emit(view.cell_list.item(0))
        assert state.retrieval.query.index == listed[0] and state.retrieval.direction == d

    # "show all" clears the selection; every query counts again.
    view.scope.linkActivated.emit("all")
    assert state.selection.current is None and not view.scope.isVisible()
    assert view.metrics()[0] is full
    assert view.summary.text() == full_summary
    assert _bar_heights(view.hist_plot).sum() == n
