"""The Time tab: the sync view's matrix and the moments strips, on a dataset whose segments are
known (each test clip's segment t holds the features of a clip of class label + t), and the
clicks that play from a moment."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from core.data.dataset import save_h5
from core.data.segments import Segments
from core.exploration.locate import sync_matrix
from tests.gui.conftest import close_window, make_window, tiny_checkpoint, tiny_dataset

T = 4  # segments per clip; also the number of classes of the tiny dataset


def segmented_dataset(shift: int = 0):
    """The tiny dataset with test segments: segment t of clip i shows (visual) and sounds
    (audio) like a test clip of class (label_i + t) % 4; ``shift`` delays the sound by that many
    segments (out of sync)."""
    data = tiny_dataset()
    test = data.test
    by_class = {c: np.flatnonzero(test.labels == c) for c in range(T)}
    audio = np.zeros((len(test), T, test.audio.shape[1]), np.float32)
    visual = np.zeros((len(test), T, test.visual.shape[1]), np.float32)
    for i, y in enumerate(test.labels):
        for t in range(T):
            src = by_class[(y + t) % T][(i + t) % len(by_class[(y + t) % T])]
            visual[i, t] = test.visual[src]
            audio[i, (t + shift) % T] = test.audio[src]
    segments = Segments(audio, visual, np.full(len(test), T), 1.0)
    return replace(data, test=replace(test, segments=segments))


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    """10 epochs on the tiny dataset: every test clip's sound and picture are matched by class
    (the session's 2-epoch checkpoint is too rough for per-segment claims)."""
    return tiny_checkpoint(tmp_path_factory.mktemp("good"), epochs=10)


@pytest.fixture
def time_window(qtbot, tmp_path, good_checkpoint):
    from tests.gui.fake_training import fake_train

    h5 = tmp_path / "segmented.h5"
    save_h5(h5, segmented_dataset())
    w = make_window(qtbot, tmp_path, h5, fake_train)
    w.load_checkpoint(str(good_checkpoint))
    qtbot.waitUntil(lambda: w.state.retrieval.model is not None, timeout=20_000)
    w.tabs.setCurrentWidget(w.time_view)
    yield w
    close_window(qtbot, w)


def test_sync_view_shows_the_clip_s_audio_by_visual_segment_matrix(time_window, qtbot):
    w = time_window
    sync = w.time_view.sync
    assert sync.data is None and "Pick a clip" in sync.title.text()
    w.state.retrieval.set_item_query("test", 5)
    data = sync.data
    assert data is not None and data.matrix.shape == (T, T)
    seg = w.state.catalog.dataset.test.segments
    expected = sync_matrix(w.state.retrieval.model, seg.of(5, "audio"), seg.of(5, "visual"))
    np.testing.assert_allclose(data.matrix, expected, atol=1e-5)
    # in sync: each sound segment is closest to the picture of the same moment
    assert list(data.matrix.argmax(axis=1)) == list(range(T))
    diag = np.diag(data.matrix).mean()
    assert diag > data.matrix[~np.eye(T, dtype=bool)].mean() + 0.3
    assert "diagonal" in sync.title.text()
    # a cell plays the sound from its row's moment
    text = sync.play_cell_at(x=0.5, y=2.5)
    assert "sound 2-3 s vs picture 0-1 s" in text
    assert sync.status.text() == text
    assert sync.play_cell_at(x=9.0, y=0.5) == ""  # outside the matrix: nothing


def test_an_out_of_sync_clip_moves_the_bright_cells_off_the_diagonal(
    qtbot, tmp_path, good_checkpoint
):
    from tests.gui.fake_training import fake_train

    h5 = tmp_path / "late.h5"
    save_h5(h5, segmented_dataset(shift=1))
    w = make_window(qtbot, tmp_path, h5, fake_train)
    try:
        w.load_checkpoint(str(good_checkpoint))
        qtbot.waitUntil(lambda: w.state.retrieval.model is not None, timeout=20_000)
        w.state.retrieval.set_item_query("test", 2)
        m = w.time_view.sync.data.matrix
        # the sound of moment t + 1 goes with the picture of moment t
        assert list(m.argmax(axis=1)) == [(a - 1) % T for a in range(T)]
    finally:
        close_window(qtbot, w)


def test_moment_strips_mark_where_each_result_matches_the_query(time_window, qtbot):
    w = time_window
    strips = w.time_view.moments
    assert not strips.strips
    asked = []
    w.time_state.segmentsRequested.connect(lambda *a: asked.append(a))
    w.state.retrieval.set_item_query("test", 0, "audio")
    assert asked == []  # the file stores the segments: nothing to encode
    r = w.state.retrieval.results
    assert r is not None
    indices = [int(i) for i in r.indices]
    assert list(strips.strips) == indices
    # scored in a worker: each strip arrives once its batch is done
    qtbot.waitUntil(lambda: all(strips.strips[i] is not None for i in indices), timeout=10_000)
    query_label = int(w.state.catalog.dataset.test.labels[0])
    labels = w.state.catalog.dataset.test.labels
    for i in indices:
        st = strips.strips[i]
        assert st.scores.shape == (T,)
        # the picture segment of the query's class is segment (query class - clip class) % 4
        assert st.best == (query_label - int(labels[i])) % T, (i, st.scores)
    name, widget, best = strips.rows[0]
    assert name.text().startswith("1. ")
    assert widget.isVisible() and widget.strip is strips.strips[indices[0]]
    assert best.text().endswith(f"{strips.strips[indices[0]].scores.max():.2f}")
    # clicking three quarters along the first strip plays the first result from 3 s
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=QPoint(int(widget.width() * 0.8), 5))
    assert " at 3." in strips.status.text() or "from 3." in strips.status.text()
    # a new direction re-scores the strips against the results' sound
    w.state.retrieval.set_direction("V2A")
    assert list(strips.strips) == [int(i) for i in w.state.retrieval.results.indices]
    qtbot.waitUntil(lambda: all(st is not None for st in strips.strips.values()), timeout=10_000)
    # back to A2V: the strips of that query and model are kept, none is scored again
    scored = []
    w.time_state.stripsRequested.connect(lambda *a: scored.append(a))
    w.state.retrieval.set_direction("A2V")
    assert scored == [] and all(strips.strips[i] is not None for i in indices)
    # a new model voids them: they are scored again
    w.state.retrieval.use_embeddings(w.state.retrieval.gallery)
    assert scored


def test_a_dataset_without_segments_says_why_there_are_none(window, qtbot):
    """The tiny dataset stores no segments and names no encoders: the view says so."""
    sync = window.time_view.sync
    window.state.retrieval.set_item_query("test", 1)
    qtbot.waitUntil(lambda: "does not name the encoders" in sync.title.text(), timeout=20_000)


def test_a_folder_extracted_without_segments_gets_them_from_its_clip_files(qtbot, tmp_path):
    """As for the demo's shipped features: the clips' segments are encoded on request, with the
    encoders the dataset names, off the GUI thread; the sync view then shows them."""
    from avexplorer.cli import main
    from core.features.extract import encode_path
    from tests.core.features_fixtures import make_video
    from tests.gui.fake_training import fake_train

    clips = tmp_path / "clips"
    for name, color, tone in (("red", (200, 40, 40), 440.0), ("blue", (40, 40, 200), 1760.0)):
        (clips / name).mkdir(parents=True)
        for i in range(4):
            make_video(clips / name / f"{name}{i}.mp4", 3.0, color=color, tone=tone)
    h5, run = tmp_path / "f.h5", tmp_path / "run"
    cheap = ["--audio-encoder", "logmel-stats", "--visual-encoder", "color-grid"]
    assert main(["extract", str(clips), "--out", str(h5), "--quiet", "--workers", "1", *cheap]) == 0
    train = ["train", str(h5), "--out", str(run), "--quiet", "--epochs", "2", "--threads", "1"]
    assert main([*train, "--batch-size", "4", "--hidden", "16", "--dim", "8"]) == 0
    w = make_window(qtbot, tmp_path, h5, fake_train)
    try:
        w.load_checkpoint(str(run / "model.pt"))
        qtbot.waitUntil(lambda: w.state.retrieval.model is not None, timeout=20_000)
        sync = w.time_view.sync
        w.state.retrieval.set_item_query("test", 0)
        qtbot.waitUntil(lambda: sync.data is not None, timeout=60_000)
        path = w.state.catalog.item_path("test", 0)
        f = encode_path(path, "logmel-stats", "color-grid", segments=1.0)
        expected = sync_matrix(w.state.retrieval.model, f.audio_seg, f.visual_seg)
        np.testing.assert_allclose(sync.data.matrix, expected, atol=1e-5)
        assert sync.data.matrix.shape == (3, 3)
        # the frames along the picture axis arrive too, one per segment
        qtbot.waitUntil(lambda: len(sync.frame_items) == 3, timeout=60_000)
    finally:
        close_window(qtbot, w)


def test_cancelled_segments_are_asked_for_again_by_the_next_query(window, qtbot, monkeypatch):
    from avexplorer.state.time_axis import CANCELLED

    ts = window.time_state
    monkeypatch.setattr(ts, "can_encode", lambda: True)  # as if it named its encoders
    asked = []
    ts.segmentsRequested.connect(lambda paths, *_: asked.append(list(paths)))
    path = window.state.catalog.item_path("test", 1)
    ts.set_segments({path: None})  # what a cancelled job reports for the clips it did not do
    assert ts.path_segments(path) == CANCELLED and asked == []
    window.state.retrieval.set_item_query("test", 1)
    assert [path] in asked


def test_explore_result_rows_show_when_each_result_matches(time_window, qtbot):
    """The retrieval table's rows carry the same strips as the Time tab, computed once; a click
    on a row's strip plays that result from the clicked moment; sound results get their
    spectrogram above the strip."""
    from PySide6.QtGui import QColor, QImage

    from avexplorer.state.time_axis import Strip
    from avexplorer.widgets.retrieval_panel import WHEN

    w = time_window
    w.tabs.setCurrentWidget(w.explore_split)
    panel, ts = w.retrieval, w.time_state
    asked = []
    w.state.signals.spectrogramsRequested.connect(lambda paths: asked.extend(paths))
    assert panel.table.isColumnHidden(WHEN)  # no query: no column
    w.state.retrieval.set_item_query("test", 0, "audio")
    indices = [int(i) for i in w.state.retrieval.results.indices]
    scored = lambda: all(isinstance(ts.strips.get(i), Strip) for i in indices)  # noqa: E731
    qtbot.waitUntil(scored, timeout=10_000)
    assert not panel.table.isColumnHidden(WHEN)
    for row, i in enumerate(indices):
        strip, image = panel.moments.cells[row]
        assert strip is ts.strips[i] and image is None  # pictures: no spectrogram
    first = ts.strips[indices[0]]
    a, b = first.bounds()[first.best]
    assert f"best moment {a:.1f}-{b:.1f} s" in panel.table.item(0, WHEN).toolTip()
    # a click three quarters along the first row's strip plays the first result from 3 s
    rect = panel.table.visualRect(panel.table.model().index(0, WHEN))
    at = QPoint(rect.left() + int(rect.width() * 0.8), rect.center().y())
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert " at 3." in panel.status.text() or "from 3." in panel.status.text()
    # V2A: the results are sounds, whose spectrograms are asked for and drawn in their rows
    w.state.retrieval.set_direction("V2A")
    indices = [int(i) for i in w.state.retrieval.results.indices]
    paths = [w.state.catalog.item_path("test", i) for i in indices]
    assert set(paths) <= set(asked)
    picture = QImage(300, 64, QImage.Format.Format_RGB32)
    picture.fill(QColor("navy"))
    w.state.catalog.set_spectrograms({paths[1]: picture})
    assert panel.moments.cells[1][1] is picture
    panel.table.viewport().grab()  # paints every row, the spectrogram and strip together
    # the results' first frames arrive after the query: the rows take them
    w.state.catalog.set_thumbnails({paths[0]: picture}, {})
    icon = panel.table.item(0, 1).icon().pixmap(20, 20).toImage()
    assert icon.pixelColor(0, 0) == QColor("navy")


def test_explore_rows_stay_compact_without_segments(window, qtbot, trained_checkpoint):
    """The tiny dataset stores no segments and cannot make them: no column, no job."""
    from avexplorer.widgets.retrieval_panel import WHEN

    asked = []
    window.time_state.segmentsRequested.connect(lambda *a: asked.append(a))
    window.load_checkpoint(str(trained_checkpoint))
    qtbot.waitUntil(lambda: window.state.retrieval.gallery is not None, timeout=20_000)
    window.state.retrieval.set_item_query("test", 1)
    assert window.state.retrieval.results is not None
    assert window.retrieval.table.isColumnHidden(WHEN) and asked == []
    # one reason for every row: the Time tab's moments say it once, above no strips
    moments = window.time_view.moments
    assert "does not name the encoders" in moments.title.text()
    assert not any(strip.isVisible() for _name, strip, _best in moments.rows)
