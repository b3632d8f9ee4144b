"""Files made from the demo: saved labels, a retrain's file and a selection exported as a feature
file still find the demo's clips wherever they are saved (the shipped features name them relative
to the clip folder), and nothing is written into the installed package: the save dialog opens in
the user's documents folder and named selections go to the user's data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QFileDialog

from avexplorer.settings import user_files_folder
from core.data.dataset import load_h5
from core.data.demo import DEMO_DIR, load_demo
from core.exploration.selection_files import export
from tests.gui.conftest import close_window, make_window
from tests.gui.fake_training import fake_train


@pytest.fixture
def demo_window(qtbot, tmp_path, gui_h5):
    """The window on the demo, its clips' folder a test one (the clips need not be built: the
    paths are what is checked)."""
    QStandardPaths.setTestModeEnabled(True)  # documents and data folders: test ones
    w = make_window(qtbot, tmp_path, gui_h5, fake_train)
    w.state.set_dataset(load_demo(clips_dir=tmp_path / "clips"))
    yield w
    close_window(qtbot, w)
    QStandardPaths.setTestModeEnabled(False)


def _package_files() -> set[Path]:
    return {p for p in DEMO_DIR.rglob("*")}


def test_saved_labels_default_to_the_users_folder_and_find_their_clips(
    qtbot, demo_window, tmp_path, monkeypatch
):
    w, st = demo_window, demo_window.state
    demo = st.catalog.dataset
    shipped = _package_files()
    offered = {}

    def dialog(parent, title, default, filters):
        offered["default"] = Path(default)
        return str(tmp_path / "elsewhere" / "mine.h5"), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", dialog)
    st.labelling.assign(0, 3)
    w.labelling_view.save_dialog()
    # The dialog opened in the user's documents folder, not the package's resources/demo.
    assert offered["default"].parent == user_files_folder()
    assert not offered["default"].is_relative_to(DEMO_DIR)
    dest = tmp_path / "elsewhere" / "mine.h5"
    qtbot.waitUntil(dest.exists, timeout=20_000)

    copy = load_h5(dest)
    assert copy.train.labels[0] == 3
    for split in ("train", "val", "test"):
        paths = copy.split(split).paths
        # every clip named where it is (absolute, in the demo's clip folder), as the demo names it
        assert paths == demo.split(split).paths
        assert all(
            Path(p).is_absolute() and Path(p).is_relative_to(tmp_path / "clips") for p in paths
        )
    assert _package_files() == shipped


def test_save_and_retrain_opens_a_file_whose_clips_are_the_demos(
    qtbot, demo_window, tmp_path, monkeypatch
):
    w, st = demo_window, demo_window.state
    demo_paths = st.catalog.dataset.train.paths
    dest = tmp_path / "retrain" / "relabelled.h5"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(dest), ""))
    st.labelling.assign(1, 2)
    w.training_panel.set_values(**{"optim.epochs": 1})
    w.labelling_view.retrain_button.click()
    qtbot.waitUntil(lambda: st.catalog.dataset.source == str(dest), timeout=20_000)
    # The table, thumbnails and playback look clips up by these paths: the demo's clips.
    assert st.catalog.dataset.train.paths == demo_paths
    assert st.catalog.item_path("train", 1) == demo_paths[1]
    qtbot.waitUntil(lambda: not w.jobs.training, timeout=30_000)


def test_named_selections_and_exports_of_the_demo(qtbot, demo_window, tmp_path):
    st = demo_window.state
    demo = st.catalog.dataset
    shipped = _package_files()
    st.selection.select_clips(np.array([0, 5, 7]))
    # Named selections: in the user's data folder, never beside the shipped features.
    where = st.selection.selections_file()
    assert not where.is_relative_to(DEMO_DIR) and where.parent == st.selection.files_folder
    st.selection.save_selection("three clips")
    assert where.is_file() and st.selection.saved_selections() == ["three clips"]
    assert _package_files() == shipped

    # A selection exported as a feature file, saved in another folder, finds its clips.
    names = {i: st.catalog.item_name("test", i) for i in (0, 5, 7)}
    out = export("h5", tmp_path / "exports" / "three.h5", st.selection.current, demo, names)
    picked = load_h5(out).test.paths
    assert picked == tuple(demo.test.paths[i] for i in (0, 5, 7))
    assert all(Path(p).is_absolute() for p in picked)
