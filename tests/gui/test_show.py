"""``avexplorer.show``: the app opened on arrays or a run folder from a notebook or a script."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import avexplorer
from core.data.arrays import ArrayError

ROOT = Path(__file__).resolve().parents[2]


def clusters(n_classes=3, per_class=20, width=8, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), per_class)
    centres = rng.normal(size=(n_classes, width)) * 4
    audio = centres[labels] + rng.normal(size=(len(labels), width))
    visual = centres[labels] + rng.normal(size=(len(labels), width))
    return audio, visual, labels


@pytest.fixture
def shown(qtbot):
    """Windows opened by show(), closed after the test; the app's data folder is a test one."""
    from PySide6.QtCore import QStandardPaths

    QStandardPaths.setTestModeEnabled(True)
    handles = []
    yield handles
    QStandardPaths.setTestModeEnabled(False)
    for h in handles:
        h.close()
        h.window.jobs.wait(10_000)
        h.state.close()


def test_show_on_arrays_opens_the_window_with_the_right_counts(qtbot, shown):
    import torch

    audio, visual, labels = clusters()
    names = [f"item {i}" for i in range(len(labels))]
    h = avexplorer.show(
        torch.from_numpy(audio),
        visual,
        labels,
        names=names,
        class_names=["a", "b", "c"],
        block=False,
    )
    shown.append(h)
    w, s = h.window, h.state
    assert w.isVisible() and w.tabs.currentWidget() is w.explore_split
    assert len(s.catalog.dataset.test) == 60 and s.catalog.dataset.class_names == ("a", "b", "c")
    assert w.dataset_panel.model.rowCount() == 60  # train and val are empty
    assert w.dataset_panel.proxy.data(w.dataset_panel.proxy.index(5, 0)) == "item 5"
    qtbot.waitUntil(lambda: w.map.layout_shown is not None, timeout=20_000)
    assert len(w.map.points) == 120
    assert "arrays: embeddings as given (PCA)" in w.map.plot.getPlotItem().titleLabel.text
    # Embeddings are compared by cosine: the rows are made unit length.
    assert np.allclose(np.linalg.norm(s.retrieval.gallery.audio, axis=1), 1, atol=1e-5)
    assert np.allclose(
        s.retrieval.gallery.audio, audio / np.linalg.norm(audio, axis=1, keepdims=True)
    )

    assert h.selection.tolist() == []
    s.selection.select_class(1)  # what a legend click does
    assert h.selection.tolist() == list(range(20, 40))
    s.selection.select_points(np.r_[np.zeros(60, bool), np.arange(60) == 0], "add")
    assert h.selected_visual.tolist() == [0, *range(20, 40)]
    assert h.selected_audio.tolist() == list(range(20, 40))
    h.select([3, 4])  # from the notebook
    assert s.selection.current.clips().tolist() == [3, 4]
    s.retrieval.set_item_query("test", 0)
    assert s.retrieval.results is not None and s.retrieval.results.hits is not None
    h.close()
    assert h.closed and h.selection.tolist() == [3, 4]  # still readable after the window closed
    assert "closed" in repr(h)


def test_save_map_waits_for_the_drawn_layout_and_writes_it_as_png(qtbot, shown, tmp_path):
    """``handle.save_map``: returns once the map is drawn, with the map and its legend in the PNG
    (the class colours are in it); a map that cannot be drawn in time is a clear error."""
    from PySide6.QtGui import QImage

    from core.errors import UserError

    h = avexplorer.show(*clusters(), class_names=["a", "b", "c"], block=False)
    shown.append(h)
    out = h.save_map(tmp_path / "maps" / "map.png", timeout=120)
    assert out == tmp_path / "maps" / "map.png"
    assert h.window.map.drawn_current() and h.window.map.layout_shown.coords.shape == (120, 2)
    png = QImage(str(out))
    canvas = h.window.map.canvas
    assert not png.isNull() and png.width() >= canvas.width() and png.height() >= canvas.height()
    colours = {png.pixelColor(x, y).name() for x in range(png.width()) for y in range(png.height())}
    assert {c.name() for c in h.state.catalog.colors} <= colours
    assert sorted(p.name for p in out.parent.iterdir()) == ["map.png"]  # no temporary left
    h.state.embeddings.set_projection("tsne")  # computed in another process: not within 10 ms
    with pytest.raises(TimeoutError, match=r"no t-SNE layout was drawn within 0\.01 s"):
        h.save_map(tmp_path / "tsne.png", timeout=0.01)
    assert not (tmp_path / "tsne.png").exists()
    h.close()
    with pytest.raises(UserError, match="closed"):
        h.save_map(tmp_path / "late.png")


def test_show_embeds_raw_features_with_a_checkpoint(qtbot, shown, trained_checkpoint):
    from core.training.checkpoint import load_checkpoint
    from core.training.embedding import embed_split
    from tests.gui.conftest import tiny_dataset

    t = tiny_dataset().test
    h = avexplorer.show(t.audio, t.visual, t.labels, model=trained_checkpoint, block=False)
    shown.append(h)
    model = load_checkpoint(trained_checkpoint).build_model("cpu")
    audio, visual = embed_split(model, t)
    assert np.allclose(h.state.retrieval.gallery.audio, audio, atol=1e-5)
    assert np.allclose(h.state.retrieval.gallery.visual, visual, atol=1e-5)
    assert h.state.catalog.dataset.class_names == tuple(
        f"class{c}" for c in range(4)
    )  # the model's
    assert h.state.retrieval.model is not None  # file queries work: there is a model to embed them


def test_show_opens_a_finished_run(qtbot, shown, trained_checkpoint, tmp_path):
    from core.data.dataset import save_h5
    from core.training.checkpoint import load_checkpoint, save_checkpoint
    from tests.gui.conftest import tiny_dataset

    data_file = tmp_path / "tiny.h5"
    save_h5(data_file, tiny_dataset())
    run = tmp_path / "runs" / "psd-1"
    run.mkdir(parents=True)
    ckpt = load_checkpoint(trained_checkpoint)
    ckpt.data_source = str(data_file)
    save_checkpoint(run / "model.pt", ckpt)
    h = avexplorer.show(run, block=False)
    shown.append(h)
    qtbot.waitUntil(lambda: h.state.retrieval.gallery is not None, timeout=20_000)
    qtbot.waitUntil(lambda: h.window.map.layout_shown is not None, timeout=20_000)
    assert len(h.window.map.points) == 2 * len(tiny_dataset().test)

    with pytest.raises(Exception, match="no checkpoint"):
        avexplorer.show(tmp_path / "runs")
    ckpt.data_source = str(tmp_path / "gone.h5")
    save_checkpoint(run / "model.pt", ckpt)
    with pytest.raises(Exception, match=r"gone\.h5.*is not there"):
        avexplorer.show(run)


def test_start_is_disabled_with_a_reason_when_there_is_nothing_to_train_on(qtbot, shown):
    """show() opens arrays as a test split only: Start says why it cannot train, and the intent
    (the menu's Start run) is refused at once, leaving no run folder behind."""
    h = avexplorer.show(*clusters(), block=False)
    shown.append(h)
    panel, runs = h.window.training_panel, h.state.runs
    assert not panel.start_button.isEnabled()
    assert "the train split needs at least 2 pairs (it has 0)" in panel.start_button.toolTip()
    assert panel.cannot_train.isVisibleTo(panel) and "Cannot train" in panel.cannot_train.text()
    errors = []
    h.state.signals.error.connect(lambda title, msg: errors.append((title, msg)))
    runs.request_training(panel.config())
    assert errors and errors[0][0] == "Cannot train" and "train split" in errors[0][1]
    assert len(runs) == 0 and not h.window.jobs.training
    assert not runs.root.exists() or not any(runs.root.iterdir())


GOOD = clusters(per_class=4)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"visual": GOOD[1][:-1]}, r"audio has 12 rows, visual has 11"),
        ({"labels": GOOD[2][:-2]}, r"labels has 10 entries, audio and visual have 12 rows"),
        ({"audio": GOOD[0][:, :5]}, r"audio embeddings are 5-d, visual 8-d"),
        (
            {"audio": np.where(np.arange(12)[:, None] == 7, np.nan, GOOD[0])},
            r"audio\[7, 0\] is nan",
        ),
        ({"labels": GOOD[2] - 1}, r"labels\[0\] = -1 is negative|out of range"),
        ({"class_names": ["a", "b"]}, r"labels\[8\] = 2 is out of range 0..1 \(2 class_names\)"),
        # ids 0, 1 and 5: classes 2..4 would be empty ones in every legend and count
        (
            {"labels": np.where(GOOD[2] == 2, 5, GOOD[2])},
            r"^labels: class ids run to 5 but no clip has id 2, 3, 4; number the classes 0..C-1",
        ),
        ({"labels": GOOD[2] + 0.5}, r"labels\[0\] = 0.5 is not a class id"),
        ({"audio": GOOD[0][0]}, r"audio must be a 2-D array \[N, D\], got shape \(8,\)"),
        ({"names": ["x"] * 3}, r"names has 3 entries, audio and visual have 12 rows"),
        ({"audio": np.zeros((12, 8))}, r"audio\[0\] is all zeros"),
        ({"model": 42}, r"model must be a checkpoint file or a model"),
    ],
)
def test_bad_input_is_refused_before_any_window_opens(monkeypatch, change, message):
    import avexplorer.notebook

    def no_window():
        raise AssertionError("a window was about to open")

    monkeypatch.setattr(avexplorer.notebook, "_qt", no_window)
    args = dict(zip(("audio", "visual", "labels"), GOOD, strict=True)) | change
    with pytest.raises((ArrayError, ValueError), match=message):
        avexplorer.show(**args)


def test_a_checkpoint_of_other_widths_is_refused(monkeypatch, trained_checkpoint):
    audio, visual, labels = clusters(n_classes=4, per_class=3, width=8)
    with pytest.raises(ArrayError, match=r"audio features are 8-d, the model takes 16-d"):
        avexplorer.show(audio, visual, labels, model=trained_checkpoint)


def test_import_avexplorer_loads_neither_qt_nor_torch():
    code = (
        "import sys, avexplorer; "
        "print(sorted(m for m in ('PySide6', 'torch', 'pyqtgraph') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stderr


def test_the_documented_script_opens_the_app_and_returns_the_selection_when_closed(tmp_path):
    """docs/examples/show_arrays.py as a user runs it, with a stand-in for the user's hand: once
    the map is drawn, select the class 'engine' and close the window."""
    hand = textwrap.dedent(
        """
        import os, runpy
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        from avexplorer.main_window import MainWindow
        app = QApplication([])
        def act():
            windows = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow)]
            if windows and windows[0].map.layout_shown is not None:
                print("points on the map:", len(windows[0].map.points))
                windows[0].state.selection.select_class(2)
                windows[0].close()
            else:
                QTimer.singleShot(100, act)
        QTimer.singleShot(100, act)
        runpy.run_path(os.environ["EXAMPLE"], run_name="__main__")
        """
    )
    env = {
        **__import__("os").environ,
        "QT_QPA_PLATFORM": "offscreen",
        "EXAMPLE": str(ROOT / "docs" / "examples" / "show_arrays.py"),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    out = subprocess.run(
        [sys.executable, "-c", hand], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "points on the map: 2000" in out.stdout
    assert "200 clips selected: [400, 401, 402" in out.stdout


def test_show_returns_at_once_under_ipythons_qt_event_loop(monkeypatch):
    """Jupyter's ``%gui qt`` (the kernel's Qt loop) and the terminal's (``active_eventloop``)."""
    import types

    from avexplorer.notebook import _event_loop_running

    def ipython(shell):
        return types.SimpleNamespace(get_ipython=lambda: shell)

    monkeypatch.setitem(sys.modules, "IPython", ipython(None))
    assert not _event_loop_running()  # IPython imported, but no shell: a plain script
    loop_qt = types.SimpleNamespace(__name__="loop_qt")
    kernel = types.SimpleNamespace(kernel=types.SimpleNamespace(eventloop=loop_qt))
    monkeypatch.setitem(sys.modules, "IPython", ipython(kernel))
    assert _event_loop_running()
    idle = types.SimpleNamespace(kernel=types.SimpleNamespace(eventloop=None))
    monkeypatch.setitem(sys.modules, "IPython", ipython(idle))
    assert not _event_loop_running()  # a kernel without %gui qt: show() waits for the window
    terminal = types.SimpleNamespace(active_eventloop="qt")
    monkeypatch.setitem(sys.modules, "IPython", ipython(terminal))
    assert _event_loop_running()
