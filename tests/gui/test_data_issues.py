"""The Data issues view: audit the open file, fix three suspects by keyboard, save a copy."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from core.data.dataset import load_h5, save_h5
from core.data.synthetic import make_dataset
from core.exploration.audit import file_train
from tests.core.test_audit import CLEAN
from tests.gui.conftest import close_window, make_window
from tests.gui.fake_training import fake_train

FLIPPED = (17, 41)  # rows whose label is moved to the next class
SWAPPED = 230  # row whose picture comes from a clip of another class


@pytest.fixture
def flawed_h5(tmp_path):
    data = make_dataset(CLEAN, seed=3)
    train = data.train
    labels, visual = train.labels.copy(), train.visual.copy()
    for r in FLIPPED:
        labels[r] = (labels[r] + 1) % CLEAN.num_classes
    donor = int(np.flatnonzero(train.labels != train.labels[SWAPPED])[0])
    visual[SWAPPED] = train.visual[donor]
    paths = tuple(f"/nonexistent/train_{i:03d}.mp4" for i in range(len(train)))
    flawed = replace(train, labels=labels, visual=visual, paths=paths)
    path = tmp_path / "flawed.h5"
    save_h5(path, replace(data, train=flawed))
    return path, train.labels


@pytest.fixture
def iwindow(qtbot, tmp_path, flawed_h5):
    w = make_window(qtbot, tmp_path, flawed_h5[0], fake_train)
    yield w
    close_window(qtbot, w)


def test_fix_three_suspects_by_keyboard_and_save(qtbot, iwindow, flawed_h5, tmp_path, monkeypatch):
    source, true = flawed_h5
    before = source.read_bytes()
    w, view = iwindow, iwindow.data_issues_view
    w.tabs.setCurrentWidget(view)
    assert view.model.rowCount() == 0 and not view.save_button.isEnabled()
    qtbot.mouseClick(view.audit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state.audit.audit is not None, timeout=60_000)
    first, second = view.model.suspect(0), view.model.suspect(1)
    # the two flipped labels lead the list, each with its true class suggested
    assert {first.row, second.row} == set(FLIPPED) and first.kind == second.kind == "label"
    assert first.suggested == true[first.row] and second.suggested == true[second.row]
    assert view.current() == first
    view.table.setFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_Return)  # accept: relabel to the suggested class
    assert view.current() == second
    qtbot.keyClick(view.table, Qt.Key.Key_U)  # mark unlabelled
    view.show_box.setCurrentIndex(2)  # mismatched pairs only
    assert view.current().row == SWAPPED and view.current().kind == "mismatch"
    view.table.setFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_Return)  # accept: drop the pair
    fixes = w.state.audit.fixes
    assert {r: f.action for r, f in fixes.items()} == {
        first.row: "relabel",
        second.row: "unlabel",
        SWAPPED: "drop",
    }
    assert "dropped" in view.model.data(view.model.index(0, 5))
    assert view.save_button.isEnabled()

    dest = tmp_path / "cleaned.h5"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(dest), ""))
    qtbot.mouseClick(view.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dest.exists, timeout=20_000)
    assert source.read_bytes() == before  # the source is never written
    copy = file_train(load_h5(dest))
    keep = [i for i in range(CLEAN.n_train) if i != SWAPPED]
    assert len(copy) == len(keep)
    assert copy.labels[keep.index(first.row)] == true[first.row]
    assert copy.labels[keep.index(second.row)] == -1
    assert copy.paths[keep.index(SWAPPED + 1)] == f"/nonexistent/train_{SWAPPED + 1:03d}.mp4"
