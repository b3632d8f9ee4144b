"""The app says what is happening where the user looks: the time views without clips or model,
a sound queried in the visual-to-audio direction, the Labels tab's first clip, Help > Getting
started."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import QStandardPaths

import avexplorer
from avexplorer.state.time_axis import NO_MODEL_STRIPS
from avexplorer.widgets.retrieval_panel import WHEN
from avexplorer.widgets.run_form import MAIN_FIELDS
from core.data.labels import with_label_fraction
from core.training.events import EpochEnd, PseudoLabels
from tests.gui.conftest import close_window, make_window, small_config, tiny_dataset
from tests.gui.fake_training import fake_train


@pytest.fixture
def shown(qtbot):
    """Windows opened by ``avexplorer.show``, closed after the test (a test data folder)."""
    QStandardPaths.setTestModeEnabled(True)
    handles = []
    yield handles
    QStandardPaths.setTestModeEnabled(False)
    for h in handles:
        h.close()
        h.window.jobs.wait(10_000)
        h.state.close()


def _time_views_say(qtbot, h, reason: str) -> None:
    """After a query, neither the result rows nor the Time tab wait for strips that cannot come:
    each says ``reason`` once."""
    w, s = h.window, h.state
    s.retrieval.set_item_query("test", 0)
    assert s.retrieval.results is not None
    qtbot.waitUntil(lambda: s.time.strips_note is not None, timeout=20_000)
    assert reason in s.time.strips_note
    assert w.retrieval.table.isColumnHidden(WHEN)  # no column of "…" for ever
    w.tabs.setCurrentWidget(w.time_view)
    moments, sync = w.time_view.moments, w.time_view.sync
    assert reason in moments.title.text()
    assert not any(strip.isVisible() for _name, strip, _best in moments.rows)
    assert "computing" not in moments.title.text()
    # The sync view says why in place of its plots (empty axes ran from -400 to 400).
    assert not sync.plots.isVisible() and sync.empty.isVisible()
    assert sync.empty.text() and "…" not in sync.empty.text()


def test_show_with_embeddings_and_no_clips_says_why_there_is_no_time_view(qtbot, shown):
    rng = np.random.default_rng(0)
    labels = np.arange(24) % 3
    h = avexplorer.show(rng.normal(size=(24, 8)), rng.normal(size=(24, 8)), labels, block=False)
    shown.append(h)
    qtbot.waitUntil(lambda: h.state.retrieval.gallery is not None, timeout=20_000)
    _time_views_say(qtbot, h, NO_MODEL_STRIPS)


def test_show_with_a_model_and_no_clips_says_why_there_is_no_time_view(
    qtbot, shown, trained_checkpoint
):
    data = tiny_dataset()
    h = avexplorer.show(
        data.test.audio,
        data.test.visual,
        data.test.labels,
        model=str(trained_checkpoint),
        block=False,
    )
    shown.append(h)
    qtbot.waitUntil(lambda: h.state.retrieval.model is not None, timeout=20_000)
    _time_views_say(qtbot, h, "no clip file")


def test_a_sound_asked_for_visual_to_audio_says_so_where_the_results_are(
    qtbot, loaded, tmp_path, monkeypatch
):
    from avexplorer.jobs import file_query
    from tests.core.features_fixtures import make_wav

    data = tiny_dataset()
    wav = make_wav(tmp_path / "bark.wav", seconds=1.0)
    monkeypatch.setattr(file_query, "file_features", lambda p, a: {"audio": data.test.audio[2]})
    s, panel = loaded.state, loaded.retrieval
    s.retrieval.query_with_file(str(wav))
    qtbot.waitUntil(
        lambda: s.retrieval.query is not None and s.retrieval.query.is_file, timeout=20_000
    )
    assert s.retrieval.results is not None and not panel.notice.isVisible()
    assert "sound file · queried by its sound" in panel.query_label.text()

    s.retrieval.set_direction("V2A")  # a sound cannot search the sounds
    assert s.retrieval.results is None
    assert panel.notice.isVisible() and not panel.table.isVisible()
    text = panel.notice.text()
    assert "bark.wav is a sound" in text and "no picture" in text and "Switch to A2V" in text
    header = panel.query_label.text()
    assert "visual query" not in header and "sound file · no picture to query with" in header

    panel.notice.linkActivated.emit("A2V")  # the fix, one click away
    assert s.retrieval.direction == "A2V" and s.retrieval.results is not None
    assert panel.table.isVisible() and not panel.notice.isVisible()
    assert panel.table.rowCount() == s.retrieval.k


def shifting_pseudo_labels(config, data, out_dir=None, control=None):
    """Fake few-label training whose pseudo-label confidences reorder at every epoch, as a real
    teacher's do: epoch 1's least confident clip is not epoch 3's."""
    seen = with_label_fraction(data, config.data.label_fraction, config.data.label_seed)
    idx = np.flatnonzero(~seen.train.labelled)
    true = seen.train.true_labels[idx]
    for ev in fake_train(config, seen, out_dir=out_dir, control=control):
        if isinstance(ev, EpochEnd):
            confidence = (((idx * 37 + ev.epoch * 41) % 97) / 97).astype(np.float32)
            yield PseudoLabels(ev.epoch, idx, true.copy(), confidence, "teacher", true, 1.0)
            ev = replace(ev, pseudo_accuracy=1.0)
        yield ev


def test_the_labels_tab_opens_at_the_least_confident_clip(qtbot, tmp_path, gui_h5):
    w = make_window(qtbot, tmp_path, gui_h5, shifting_pseudo_labels)
    try:
        small_config(w, "psd", epochs=3)
        w.training_panel.set_values(**{"data.label_fraction": 0.25})
        w.state.runs.request_training(w.training_panel.config())
        lab = w.state.labelling
        qtbot.waitUntil(lambda: lab.candidates.epoch == 3, timeout=20_000)
        view = w.labelling_view
        w.tabs.setCurrentWidget(view)  # opened after the run, as a user would
        qtbot.wait(50)
        least = int(lab.candidates.indices[np.argmin(lab.candidates.confidence)])
        assert view.table.currentIndex().row() == 0 and view.current_index() == least
        assert view.table.verticalScrollBar().value() == 0
        # Once the user reviews, the clip in hand stays current when new pseudo-labels come.
        view.move(3)
        reviewing = view.current_index()
        # the next epoch's pseudo-labels, in another order
        lab.candidates = replace(lab.candidates, confidence=lab.candidates.confidence[::-1].copy())
        lab.candidatesChanged.emit()
        assert view.current_index() == reviewing
        assert view.table.currentIndex().row() != 3
    finally:
        close_window(qtbot, w)


def test_the_labels_hint_points_at_the_label_fraction_on_the_run_form(qtbot, window):
    view = window.labelling_view
    text = view.summary.text()
    assert "Label fraction" in text and "More settings" not in text
    assert "data.label_fraction" in MAIN_FIELDS  # on the form, not under More settings


def test_help_getting_started_says_what_to_click_and_where_runs_go(qtbot, window):
    action = next(a for a in window.menuBar().actions() if a.text() == "&Help")
    titles = [a.text() for a in action.menu().actions()]
    assert titles[0] == "&Getting started"
    dialog = window.show_getting_started()
    qtbot.addWidget(dialog)
    text = dialog.text.toPlainText()
    assert "What to click first" in text and "Start" in text and "Query with a file" in text
    assert str(window.state.runs.root) in text
    assert str(window.state.selection.selections_file()) in text
