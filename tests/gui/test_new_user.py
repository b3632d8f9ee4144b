"""The issue-12 scenarios, tried as a new user would: file queries, stale state, checkpoints of
other data, runs kept across launches, quitting mid-job, the keyboard, exports."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QKeySequence

from tests.gui.conftest import close_window, make_window, small_config, tiny_dataset
from tests.gui.fake_training import val_scores


def _file_query(qtbot, window, path):
    window.state.retrieval.query_with_file(str(path))
    qtbot.waitUntil(
        lambda: (
            window.state.retrieval.query is not None
            and window.state.retrieval.query.path == str(path)
        ),
        timeout=20_000,
    )


def _ranking(state, split, index, modality):
    state.retrieval.set_item_query(split, index, modality)
    return list(state.retrieval.results.indices)


# ----- 1: File > Query with a file -------------------------------------------------------------
def test_query_with_a_file_from_the_menu_and_the_button(qtbot, loaded, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    data = tiny_dataset()
    path = tmp_path / "q.npz"
    np.savez(path, audio=data.test.audio[3], visual=data.test.visual[3])
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    menu = next(a for a in loaded.menuBar().actions() if a.text() == "&File").menu()
    action = next(a for a in menu.actions() if a.text() == "&Query with a file…")
    assert action.shortcut() == QKeySequence("Ctrl+Shift+F")
    loaded.state.retrieval.set_direction("A2V")
    action.trigger()
    qtbot.waitUntil(lambda: loaded.state.retrieval.results is not None, timeout=20_000)
    got = list(loaded.state.retrieval.results.indices)
    assert loaded.state.retrieval.results.query.name == "q.npz"
    assert got == _ranking(loaded.state, "test", 3, "audio")  # the file holds item 3's features

    loaded.state.retrieval.query = None
    qtbot.mouseClick(loaded.retrieval.file_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: loaded.state.retrieval.query is not None, timeout=20_000)
    assert list(loaded.state.retrieval.results.indices) == got
    assert loaded.tabs.currentIndex() == 1  # the explore tab, where the results are


# ----- 2: a file query never goes stale --------------------------------------------------------
def test_a_file_query_follows_direction_and_model_and_has_no_hits(
    qtbot, loaded, tmp_path, monkeypatch
):
    from avexplorer.jobs import file_query
    from avexplorer.projections import EpochEmbeddings
    from core.training.embedding import embed_features, embed_split

    data = tiny_dataset()
    image = tmp_path / "frame.png"
    picture = QImage(40, 30, QImage.Format.Format_RGB888)
    picture.fill(QColor(200, 40, 40))
    assert picture.save(str(image))
    feats = {"audio": data.test.audio[5], "visual": data.test.visual[5]}
    monkeypatch.setattr(file_query, "file_features", lambda p, attrs: dict(feats))
    s = loaded.state
    s.retrieval.set_direction("A2V")
    _file_query(qtbot, loaded, image)
    assert s.retrieval.results.direction == "A2V"
    assert list(s.retrieval.results.indices) == _ranking(s, "test", 5, "audio")

    _file_query(qtbot, loaded, image)
    s.retrieval.set_direction("V2A")  # the same file, now queried with its picture
    assert s.retrieval.results.direction == "V2A"
    assert "video file · queried by its picture" in loaded.retrieval.query_label.text()
    assert list(s.retrieval.results.indices) == _ranking(s, "test", 5, "visual")

    _file_query(qtbot, loaded, image)
    # Neither hits nor misses: the file has no class. The map rings its results in grey.
    assert s.retrieval.results.hits is None and s.retrieval.results.ap is None
    assert loaded.retrieval.table.item(0, 4).text() == ""
    pens = {spot.pen().color().name() for spot in loaded.map.marks.points()}
    assert pens == {"#787878"}
    # Its thumbnail is its picture (the red frame), not an empty box.
    thumb = loaded.retrieval.query_thumb.pixmap().toImage()
    centre = thumb.pixelColor(thumb.width() // 2, thumb.height() // 2)
    assert centre.red() > 150 and centre.green() < 100

    # Another model (another run's, say): the same file is embedded again with it.
    model = copy.deepcopy(s.retrieval.model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    audio, visual = embed_split(model, data.test, "cpu")
    s.retrieval.use_embeddings(EpochEmbeddings(0, audio, visual, model))
    want = embed_features(model, data.test.visual[5][None], "visual")[0]
    assert np.allclose(s.retrieval.query_vector, want, atol=1e-6)
    assert list(s.retrieval.results.indices) == list(np.argsort(-(audio @ want))[: s.retrieval.k])


def test_a_sound_file_query_shows_its_spectrogram(qtbot, loaded, tmp_path, monkeypatch):
    from avexplorer.jobs import file_query
    from tests.core.features_fixtures import make_wav

    data = tiny_dataset()
    wav = make_wav(tmp_path / "tone.wav", seconds=1.0)
    monkeypatch.setattr(file_query, "file_features", lambda p, a: {"audio": data.test.audio[2]})
    loaded.state.retrieval.set_direction("V2A")
    _file_query(qtbot, loaded, wav)
    q = loaded.state.retrieval.query
    assert loaded.state.retrieval.direction == "A2V"  # a sound can only be an audio query
    assert q.image is not None and q.image.height() == 64  # 64 mel bands
    qtbot.waitUntil(
        lambda: loaded.state.catalog.spectrograms.get(str(wav)) is not None, timeout=20_000
    )
    assert loaded.retrieval.query_spec.pixmap() is not None
    assert not loaded.retrieval.query_spec.pixmap().isNull()


# ----- 3: checkpoints of other data; recent runs say what they are -----------------------------
def test_a_checkpoint_of_other_data_is_refused_with_what_differs(qtbot, window, trained_checkpoint):
    window.state.set_dataset(tiny_dataset(n_classes=3))
    window.load_checkpoint(str(trained_checkpoint))
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=20_000)
    title, message = window.last_error
    assert title == "Checkpoint not loaded"
    assert "4 classes, the data has 3" in message and "tiny.h5" in message
    assert window.state.retrieval.gallery is None and window.state.retrieval.model is None
    assert not json.loads(window_settings().value("recent/runs", "[]"))


def window_settings():
    from avexplorer.settings import settings

    return settings()


def test_recent_runs_name_method_dataset_date_and_best_map(qtbot, loaded, trained_checkpoint):
    from core.training.checkpoint import load_checkpoint

    best = load_checkpoint(trained_checkpoint).run["best_avg"]
    texts = [a.text() for a in loaded.recent_menu.actions()]
    assert len(texts) == 1
    method, dataset, when, score = texts[0].split(" · ")
    assert (method, dataset, score) == ("triplet", "tiny.h5", f"best MAP {best:.3f}")
    assert len(when) == len("2026-12-01 14:02")


# ----- 7: runs outlive the session, and can be deleted -----------------------------------------
def test_runs_are_restored_from_their_folders_and_deleted(qtbot, window, tmp_path, gui_h5):
    from tests.gui.fake_training import fake_train

    small_config(window, "psd", epochs=3)
    window.state.runs.request_training(window.training_panel.config())
    qtbot.waitUntil(
        lambda: window.state.runs.current_run.state == "finished" and not window.jobs.training,
        timeout=20_000,
    )
    live = window.state.runs.current_run
    folder = live.out_dir
    close_window(qtbot, window)

    again = make_window(qtbot, tmp_path, gui_h5, fake_train)  # a relaunch: same runs folder
    try:
        (run,) = again.state.runs.values()
        assert run.restored and run.out_dir == folder and run.state == "finished"
        assert [e.val.avg for e in run.epochs] == [val_scores(e).avg for e in range(3)]
        assert run.steps == live.steps and run.losses["total"] == pytest.approx(
            live.losses["total"]
        )
        assert [e.r for e in run.epochs] == [e.r for e in live.epochs]
        assert "best MAP" in again.training_panel.runs.item(0).text()
        again.training_panel.runs.item(0).setCheckState(Qt.CheckState.Checked)  # overlay it
        again.plots.refresh()
        x, y = again.plots.map_curves[(run.id, "avg")].getData()
        assert list(x) == [1.0, 2.0, 3.0] and np.allclose(y, [e.val.avg for e in run.epochs])
        _rx, ry = again.plots.r_curves[run.id].getData()
        assert np.allclose(ry, [e.r for e in run.epochs])

        again.training_panel.runs.setCurrentRow(0)
        asked = []
        again.training_panel.confirm = lambda text: asked.append(text) or True
        again.training_panel.delete_button.click()
        assert asked and str(folder) in asked[0]
        assert not folder.exists() and not again.state.runs
        assert again.training_panel.runs.count() == 0
    finally:
        close_window(qtbot, again)


def test_run_folders_without_a_record_are_listed_and_a_damaged_one_is_named(
    qtbot, tmp_path, gui_h5
):
    """Runs made before the app wrote run.json (or by the CLI into the runs folder) are listed
    from their checkpoints on relaunch; a folder whose checkpoint is damaged is reported by
    name, and the others are still listed."""
    from core.data.dataset import load_h5
    from core.training.config import RunConfig, method_config
    from core.training.loop import train
    from tests.gui.fake_training import fake_train

    runs = tmp_path / "runs"
    cfg = method_config("triplet", RunConfig()).replace(
        **{"optim.epochs": 2, "optim.batch_size": 16, "model.hidden": 32, "threads": 1}
    )
    for name in ("20261101-100000-triplet-1", "20261101-110000-triplet-2"):
        for _ in train(cfg, load_h5(gui_h5), out_dir=runs / name):
            pass
    (runs / "20261101-110000-triplet-2" / "last.pt").write_bytes(b"not a checkpoint")
    (runs / "notes").mkdir()  # not a run folder: passed over in silence
    w = make_window(qtbot, tmp_path, gui_h5, fake_train)
    try:
        (run,) = w.state.runs.values()
        assert run.name == "20261101-100000-triplet-1" and run.restored
        assert run.state == "finished" and run.method == "triplet" and run.total_epochs == 2
        assert [e.epoch for e in run.epochs] == [1, 2]
        assert set(run.checkpoints) == {"best", "last"}
        assert w.training_panel.runs.count() == 1
        shown = w.statusBar().currentMessage()
        assert "20261101-110000-triplet-2" in shown and "not a readable" in shown
        assert "notes" not in shown
        named = w.training_panel.unreadable  # stays in the Training tab, after the message goes
        assert not named.isHidden() and "20261101-110000-triplet-2" in named.text()
        w.training_panel.runs.setCurrentRow(0)  # its model becomes the one the map uses
        qtbot.waitUntil(lambda: w.state.retrieval.gallery is not None, timeout=20_000)
        assert w.state.runs.current_run_id == run.id and set(run.embeddings) == {2}
    finally:
        close_window(qtbot, w)


# ----- 10: quitting cancels background work at once ------------------------------------------
def test_quitting_during_the_demo_build_cancels_it_at_once(qtbot, window, tmp_path, monkeypatch):
    import time

    from avexplorer.jobs.runner import live_workers

    monkeypatch.setenv("AVEXPLORER_DEMO_CLIPS", str(tmp_path / "demo-clips"))
    texts = []
    window.state.signals.taskChanged.connect(texts.append)
    window.jobs.build_demo_clips()  # the tiny dataset's clip files do not exist: a build
    qtbot.waitUntil(lambda: any("clips/s" in t for t in texts), timeout=60_000)
    assert any("/600 clips" in t and "ETA" in t for t in texts)
    assert window.cancel_button.isVisible()
    errors = []
    window.state.signals.error.connect(lambda *e: errors.append(e))
    t0 = time.monotonic()
    window.close()
    qtbot.waitUntil(lambda: not live_workers(), timeout=10_000)
    ended = time.monotonic() - t0
    assert ended < 10  # one clip's rendering at most, not the whole build
    assert not (tmp_path / "demo-clips").exists()  # a cancelled build leaves nothing behind
    assert not errors


# ----- 11: the keyboard, one epoch numbering, 2x PNGs --------------------------------------------
def test_arrow_keys_in_the_table_move_the_query(qtbot, loaded):
    panel, s = loaded.dataset_panel, loaded.state
    row = next(r for r in range(panel.proxy.rowCount()) if panel.proxy.index(r, 2).data() == "test")
    panel.table.setFocus()
    panel.table.clicked.emit(panel.proxy.index(row, 0))
    panel.table.setCurrentIndex(panel.proxy.index(row, 0))
    first = (s.retrieval.query.split, s.retrieval.query.index)
    qtbot.keyClick(panel.table, Qt.Key.Key_Down)
    assert (s.retrieval.query.split, s.retrieval.query.index) == (first[0], first[1] + 1)
    qtbot.keyClick(panel.table, Qt.Key.Key_Up)
    assert (s.retrieval.query.split, s.retrieval.query.index) == first
    assert s.retrieval.results is not None and s.retrieval.results.query.index == first[1]


def test_exported_epoch_matches_the_ui_and_pngs_are_2x(qtbot, loaded, tmp_path):
    from core.training.checkpoint import load_checkpoint

    trained = load_checkpoint(loaded.state.retrieval.gallery.checkpoint).epoch  # epochs trained: 2
    loaded.export_embeddings(str(tmp_path / "e.npz"))
    z = np.load(tmp_path / "e.npz")
    assert int(z["epochs_trained"]) == trained == 2
    assert f"after epoch {trained} " in loaded.map.plot.getPlotItem().titleLabel.text
    assert list(z["paths"]) == list(tiny_dataset().test.paths)

    widget = loaded.map.canvas
    loaded.export_png(widget, str(tmp_path / "map.png"))
    png = QImage(str(tmp_path / "map.png"))
    assert (png.width(), png.height()) == (2 * widget.width(), 2 * widget.height())


def test_selecting_a_restored_run_loads_its_best_checkpoint(
    qtbot, tmp_path, gui_h5, trained_checkpoint
):
    """A run trained by the CLI into the app's runs folder, plus the app's record: after a
    relaunch, picking it in the list makes its model the one the map and queries use."""
    import shutil

    from avexplorer import run_records
    from core.data.dataset import load_h5
    from core.training.checkpoint import load_checkpoint
    from tests.gui.fake_training import fake_train

    ckpt = load_checkpoint(trained_checkpoint)
    folder = tmp_path / "runs" / "20261201-120000-triplet-1"
    folder.mkdir(parents=True)
    shutil.copy(trained_checkpoint, folder / "model.pt")
    shutil.copy(trained_checkpoint.parent / "history.jsonl", folder / "history.jsonl")
    record = {
        "name": "triplet 1",
        "config": ckpt.config.to_dict(),
        "dataset": "tiny.h5",
        "dataset_key": run_records.dataset_key(load_h5(gui_h5)),
        "created": 0.0,
        "state": "finished",
    }
    (folder / "run.json").write_text(json.dumps(record))
    w = make_window(qtbot, tmp_path, gui_h5, fake_train)
    try:
        (run,) = w.state.runs.values()
        assert len(run.epochs) == 2 and run.checkpoints["best"] == folder / "model.pt"
        w.training_panel.runs.setCurrentRow(0)
        qtbot.waitUntil(lambda: w.state.retrieval.gallery is not None, timeout=20_000)
        assert w.state.runs.current_run_id == run.id and set(run.embeddings) == {ckpt.epoch}
        qtbot.waitUntil(lambda: w.map.layout_shown is not None, timeout=20_000)
        assert w.map.run_id == run.id
    finally:
        close_window(qtbot, w)


# ----- 4: every view fits from 1280 x 800 up ---------------------------------------------------
def test_every_view_fits_a_1280_by_800_screen(qtbot, window):
    small_config(window, "psd", epochs=12)  # curves and tick labels, as in a real session
    window.state.runs.request_training(window.training_panel.config())
    qtbot.waitUntil(lambda: not window.jobs.training, timeout=20_000)
    window.plots.refresh()
    hint = window.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 760  # 800 less a title bar
    window.resize(1280, 760)
    for i in range(window.tabs.count()):
        window.tabs.setCurrentIndex(i)
        qtbot.wait(30)
        view = window.tabs.currentWidget()
        assert view.width() >= view.minimumSizeHint().width(), window.tabs.tabText(i)
    window.tabs.setCurrentIndex(0)
    qtbot.wait(30)
    # With the run form at its width, every training plot's title fits (they were cut off).
    window.resizeDocks([window.dataset_dock], [340], Qt.Orientation.Horizontal)
    window.training_split.setSizes([330, 10_000])
    qtbot.wait(30)
    for name, plot in window.plots.plots().items():
        title = plot.getPlotItem().titleLabel.item.boundingRect().width()
        assert title <= plot.width(), (name, title, plot.width())
        right = plot.mapTo(window.plots, plot.rect().topRight()).x()
        assert right < window.plots.width(), (name, right, window.plots.width())
    # The heatmaps' colour bars, axis labels included, are inside the view (they were cut off).
    heat = window.heatmaps
    for matrix in (heat.teacher, heat.student):
        bar = matrix.bar.mapRectToScene(matrix.bar.boundingRect())
        on_screen = heat.view.mapFromScene(bar).boundingRect()
        assert heat.view.viewport().rect().contains(on_screen)
