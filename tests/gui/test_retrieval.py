import numpy as np
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from tests.gui.conftest import tiny_dataset


def _drop(widget, path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    widget.dropEvent(event)


def test_dropping_a_feature_file_runs_a_query_and_fills_the_results(qtbot, loaded, tmp_path):
    data = tiny_dataset()
    path = tmp_path / "query.npz"
    np.savez(path, audio=data.test.audio[3])  # audio features of test item 3
    _drop(loaded.retrieval, path)
    qtbot.waitUntil(lambda: loaded.state.retrieval.results is not None, timeout=20_000)
    r = loaded.state.retrieval.results
    assert r.query.name == "query.npz" and r.direction == "A2V"
    table = loaded.retrieval.table
    assert table.rowCount() == loaded.state.retrieval.k
    scores = [float(table.item(i, 3).text()) for i in range(table.rowCount())]
    assert scores == sorted(scores, reverse=True)
    # The dropped features equal test item 3's, so the ranking equals that item's A2V ranking.
    loaded.state.retrieval.set_item_query("test", 3, "audio")
    assert list(loaded.state.retrieval.results.indices) == list(r.indices)
    assert loaded.state.retrieval.results.ap is not None


def test_dropping_a_clip_encodes_it_with_core_features(qtbot, loaded, tmp_path, monkeypatch):
    """A video dropped on the window goes through core.features' encoder, then the model."""
    from avexplorer.jobs import file_query

    data = tiny_dataset()
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    monkeypatch.setattr(
        file_query,
        "file_features",
        lambda p, attrs: {"visual": data.test.visual[5], "audio": data.test.audio[5]},
    )
    loaded.state.retrieval.set_direction("V2A")
    _drop(loaded, clip)
    qtbot.waitUntil(
        lambda: (
            loaded.state.retrieval.results is not None
            and loaded.state.retrieval.results.query.name == "clip.mp4"
        ),
        timeout=20_000,
    )
    assert loaded.state.retrieval.results.modality == "visual"
    assert loaded.retrieval.table.rowCount() > 0


def test_a_wrong_dimension_file_shows_an_error_and_the_app_keeps_running(qtbot, loaded, tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, audio=np.zeros(7, np.float32))
    errors = []
    loaded.state.signals.error.connect(lambda title, msg: errors.append(msg))
    _drop(loaded.retrieval, path)
    qtbot.waitUntil(lambda: bool(errors), timeout=20_000)
    assert "7 dimensions" in errors[0]
    assert loaded.last_error[1] == errors[0]
    assert "bad.npz" in loaded.statusBar().currentMessage()


def test_clicking_a_map_point_selects_it_as_query(qtbot, loaded):
    m = loaded.map
    pos = m.point_position("visual", 7)
    qtbot.mouseClick(m.plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: loaded.state.retrieval.query is not None, timeout=5_000)
    q = loaded.state.retrieval.query
    assert (q.split, loaded.state.retrieval.query_modality) == ("test", "visual")
    # Points may overlap: the click picks the item drawn under the cursor.
    picked = m.point_position("visual", q.index)
    assert abs(picked.x() - pos.x()) <= 6 and abs(picked.y() - pos.y()) <= 6
    assert loaded.state.retrieval.results is not None
    assert loaded.retrieval.table.rowCount() > 0
    assert len(m.marks.data) == 1 + loaded.state.retrieval.k  # the query ring and one per result


def test_table_item_becomes_the_query(qtbot, loaded):
    panel = loaded.dataset_panel
    row = next(r for r in range(panel.proxy.rowCount()) if panel.proxy.index(r, 2).data() == "test")
    panel.table.clicked.emit(panel.proxy.index(row, 0))
    q = loaded.state.retrieval.query
    assert q is not None and q.split == "test" and loaded.state.retrieval.direction == "A2V"
    assert loaded.state.retrieval.results.hits.dtype == bool
    assert loaded.retrieval.ap_label.text().startswith("AP 0.") or "AP 1." in (
        loaded.retrieval.ap_label.text()
    )


def test_playing_audio_without_a_clip_file_gives_a_message_not_a_crash(qtbot, loaded):
    loaded.state.retrieval.set_item_query("test", 0)
    loaded.retrieval._play_query()
    assert "missing" in loaded.retrieval.status.text() or "no" in loaded.retrieval.status.text()


def test_the_empty_results_table_fits_its_panel_before_the_first_query(qtbot, window):
    """Before any query the columns are as wide as their headers and the clip name takes the
    rest, so the panel shows no horizontal scroll bar."""
    window.resize(1280, 800)
    window.tabs.setCurrentIndex(1)
    table = window.retrieval.table
    qtbot.waitUntil(lambda: table.isVisible(), timeout=5_000)
    assert table.horizontalScrollBar().maximum() == 0
    assert table.columnWidth(1) > max(table.columnWidth(c) for c in (0, 2, 3, 4))
