"""The labelling view and the other marks of few labels, driven through the app's state.

Training is a fake event source that hides labels as ``data.label_fraction`` does and sends the
``PseudoLabels`` / ``EpochEnd.pseudo_accuracy`` of a teacher by fixed formulas, so what the views
show can be checked against them.
"""

from __future__ import annotations

from dataclasses import replace

import h5py
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from avexplorer.state.run import CHECKPOINT_RUN
from core.data.dataset import UNLABELLED, load_h5, save_h5
from core.data.labels import with_label_fraction
from core.training.events import AlignmentSnapshot, EpochEnd, PseudoLabels
from tests.gui.conftest import close_window, make_window, small_config, tiny_dataset
from tests.gui.fake_training import fake_train

FRACTION = 0.25


def fake_pseudo(epoch: int, true: np.ndarray, indices: np.ndarray, n_classes: int):
    """The fake teacher: wrong on every (epoch + 2)-th clip, confidence by position."""
    wrong = np.arange(len(true)) % (epoch + 2) == 0
    predicted = np.where(wrong, (true + 1) % n_classes, true).astype(np.int64)
    confidence = (((indices * 37) % 97) / 97).astype(np.float32)
    return predicted, confidence, float((predicted == true).mean())


def fake_few_labels(config, data, out_dir=None, control=None):
    """``fake_train`` on the labels a run with ``data.label_fraction`` keeps, plus pseudo-labels
    of the hidden ones before each ``EpochEnd`` (as ``core.training.loop`` sends them)."""
    seen = with_label_fraction(data, config.data.label_fraction, config.data.label_seed)
    idx = np.flatnonzero(~seen.train.labelled)
    true = seen.train.true_labels[idx] if seen.train.true_labels is not None else None
    for ev in fake_train(config, seen, out_dir=out_dir, control=control):
        if isinstance(ev, AlignmentSnapshot):
            ev = replace(ev, annotated=(ev.labels >= 0) & (ev.indices % 2 == 0))
        if isinstance(ev, EpochEnd) and len(idx):
            known = true if true is not None else np.zeros(len(idx), np.int64)
            predicted, confidence, acc = fake_pseudo(ev.epoch, known, idx, data.num_classes)
            acc_or_none = acc if true is not None else None
            yield PseudoLabels(ev.epoch, idx, predicted, confidence, "teacher", true, acc_or_none)
            ev = replace(ev, pseudo_accuracy=acc_or_none)
        yield ev


@pytest.fixture
def lwindow(qtbot, tmp_path, gui_h5):
    w = make_window(qtbot, tmp_path, gui_h5, fake_few_labels)
    yield w
    close_window(qtbot, w)


def train_simulated(qtbot, w, epochs: int = 3):
    small_config(w, "psd", epochs)
    w.training_panel.set_values(**{"data.label_fraction": FRACTION, "data.label_seed": 0})
    config = w.training_panel.config()
    assert config.data.label_fraction == FRACTION
    w.state.runs.request_training(config)
    qtbot.waitUntil(
        lambda: w.state.runs.current_run and w.state.runs.current_run.state == "finished",
        timeout=20_000,
    )
    return w.state.runs.current_run


def save_as(monkeypatch, path):
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), ""))


def test_form_has_the_label_fraction(window):
    form = window.training_panel
    form.set_values(**{"data.label_fraction": 0.1, "data.label_seed": 3})
    cfg = form.config()
    assert (cfg.data.label_fraction, cfg.data.label_seed) == (0.1, 3)


def test_label_three_clips_with_the_keyboard_and_save(qtbot, lwindow, tmp_path, monkeypatch):
    w, st = lwindow, lwindow.state
    run = train_simulated(qtbot, w)
    view, lab = w.labelling_view, st.labelling
    original = load_h5(st.catalog.dataset.source)
    seen = with_label_fraction(original, FRACTION, 0)
    hidden = np.flatnonzero(~seen.train.labelled)
    assert run.pseudo is not None and run.pseudo.epoch == 3
    assert np.array_equal(lab.candidates.indices, hidden)
    assert view.model.rowCount() == len(hidden)

    w.tabs.setCurrentWidget(view)
    view.table.setFocus()
    view.table.selectRow(0)
    first, second, third = (view.model.train_index(r) for r in range(3))
    qtbot.keyClick(view.table, Qt.Key.Key_3)  # class 3 (id 2), then on to the next clip
    assert view.current_index() == second
    qtbot.keyClick(view.table, Qt.Key.Key_Return)  # accept the pseudo-label
    assert view.current_index() == third
    view.class_box.setCurrentIndex(0)  # the class picker
    view.class_box.activated.emit(0)
    predicted_second = int(lab.candidates.predicted[lab.row_of(second)])
    assert lab.assignments == {first: 2, second: predicted_second, third: 0}
    assert view.model.data(view.model.index(0, 3)) == "class2"

    dest = tmp_path / "labelled.h5"
    save_as(monkeypatch, dest)
    view.save_button.click()
    qtbot.waitUntil(dest.exists, timeout=10_000)
    qtbot.waitUntil(lambda: not st.tasks, timeout=10_000)
    saved = load_h5(dest)
    expected = seen.train.labels.copy()  # what the run trained on: hidden labels are -1
    expected[[first, second, third]] = [2, predicted_second, 0]
    assert np.array_equal(saved.train.labels, expected)
    assert np.array_equal(saved.test.labels, original.test.labels)
    assert np.array_equal(saved.train.audio, original.train.audio)
    # the open file is untouched
    assert np.array_equal(load_h5(st.catalog.dataset.source).train.labels, original.train.labels)


def test_sorted_by_confidence_least_first(qtbot, lwindow):
    w = lwindow
    train_simulated(qtbot, w)
    model, lab = w.labelling_view.model, w.state.labelling
    shown = [float(lab.candidates.confidence[model.order[r]]) for r in range(model.rowCount())]
    assert shown == sorted(shown)
    assert float(model.data(model.index(0, 2))) == pytest.approx(min(shown), abs=0.005)
    w.labelling_view.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    shown = [float(lab.candidates.confidence[model.order[r]]) for r in range(model.rowCount())]
    assert shown == sorted(shown, reverse=True)


def test_accuracy_curve_follows_the_epochs(qtbot, lwindow):
    w = lwindow
    run = train_simulated(qtbot, w, epochs=3)
    lab = w.state.labelling
    true = lab.candidates.true_labels
    expected = [
        fake_pseudo(e, true, lab.candidates.indices, w.state.catalog.dataset.num_classes)[2]
        for e in (1, 2, 3)
    ]
    x, y = lab.accuracy_curve()
    assert list(x) == [1, 2, 3]
    assert np.allclose(y, expected)
    assert np.allclose(y, [e.pseudo_accuracy for e in run.epochs])
    _cx, cy = w.labelling_view.curve.getData()
    assert np.allclose(cy, expected)
    assert not w.labelling_view.curve_plot.isHidden()


def test_heatmap_marks_label_teacher_and_unlabelled(qtbot, lwindow):
    from avexplorer.widgets.alignment_heatmap import (
        FROM_LABEL,
        FROM_TEACHER,
        MARK_COLOURS,
        UNLABELLED_PAIR,
        pair_kinds,
    )

    w = lwindow
    run = train_simulated(qtbot, w)
    w.tabs.setCurrentIndex(0)
    heat = w.heatmaps
    heat._pending = True
    assert heat.refresh()
    snap = run.snapshot
    kinds = pair_kinds(snap.labels, snap.annotated)[heat.order]
    assert np.array_equal(heat.kinds, kinds)
    assert {FROM_LABEL, FROM_TEACHER, UNLABELLED_PAIR} <= set(kinds.tolist())
    # unlabelled pairs are exactly the -1 rows, annotated ones come from labels
    assert np.array_equal(kinds == UNLABELLED_PAIR, snap.labels[heat.order] < 0)
    assert np.array_equal(
        kinds == FROM_LABEL, snap.annotated[heat.order] & (snap.labels[heat.order] >= 0)
    )
    rows = heat.teacher.row_marks.image[:, 0, :]
    cols = heat.teacher.col_marks.image[0, :, :]
    assert np.array_equal(rows, MARK_COLOURS[kinds]) and np.array_equal(cols, rows)
    assert "unlabelled (grey)" in heat.caption
    row = int(np.flatnonzero(kinds == UNLABELLED_PAIR)[0])
    assert "unlabelled: from the teacher" in heat.show_cell(row, row)


@pytest.fixture
def unlabelled_h5(tmp_path):
    """The tiny set with every third train clip unlabelled (-1), as a user's file would be."""
    data = tiny_dataset()
    labels = data.train.labels.copy()
    labels[::3] = UNLABELLED
    path = tmp_path / "partly.h5"
    save_h5(path, replace(data, train=replace(data.train, labels=labels)))
    return path


def test_table_marks_and_filters_unlabelled(qtbot, tmp_path, unlabelled_h5):
    from avexplorer.widgets.dataset_panel import LABELLED, UNLABELLED_ONLY

    w = make_window(qtbot, tmp_path, unlabelled_h5, fake_few_labels)
    try:
        panel = w.dataset_panel
        n_unlab = int((w.state.catalog.dataset.train.labels < 0).sum())
        box = panel.class_box
        box.setCurrentIndex(box.findData(UNLABELLED_ONLY))
        assert panel.proxy.rowCount() == n_unlab
        texts = {panel.proxy.data(panel.proxy.index(r, 1)) for r in range(n_unlab)}
        assert texts == {"unlabelled"}
        box.setCurrentIndex(box.findData(LABELLED))
        assert panel.proxy.rowCount() == panel.model.rowCount() - n_unlab
        # without a run the labelling view lists the file's unlabelled clips, no pseudo-label
        lab = w.state.labelling
        assert len(lab.candidates) == n_unlab and (lab.candidates.predicted == -1).all()
        assert "Train a run" in w.labelling_view.summary.text()
    finally:
        close_window(qtbot, w)


def test_manifest_and_failed_saves(qtbot, tmp_path, unlabelled_h5, monkeypatch):
    w = make_window(qtbot, tmp_path, unlabelled_h5, fake_few_labels)
    try:
        st, view = w.state, w.labelling_view
        i = int(st.labelling.candidates.indices[0])
        st.labelling.assign(i, 1)
        dest = tmp_path / "out" / "labels.csv"
        save_as(monkeypatch, dest)
        view.save_button.click()
        qtbot.waitUntil(dest.exists, timeout=10_000)
        lines = dest.read_text().splitlines()
        assert lines[0] == "path,label,split"
        row = next(line for line in lines if f"train_{i:03d}.mp4" in line)
        assert row.endswith(",class1,train")
        n_empty = sum(1 for line in lines[1:] if ",," in line)
        assert n_empty == len(st.labelling.candidates) - 1

        errors = []
        st.signals.error.connect(lambda title, msg: errors.append((title, msg)))
        st.labelling.save(st.catalog.dataset.source)  # onto the open file: refused
        qtbot.waitUntil(lambda: len(errors) == 1, timeout=10_000)
        assert errors[0][0] == "Labels not saved" and "open dataset" in errors[0][1]
        with h5py.File(st.catalog.dataset.source) as f:
            assert (f["lab_train"][()] == -1).sum() == len(st.labelling.candidates)
        blocked = tmp_path / "file"
        blocked.write_text("")
        st.labelling.save(str(blocked / "x.h5"))  # its folder is a file
        qtbot.waitUntil(lambda: len(errors) == 2, timeout=10_000)
        assert "\n" not in errors[1][1].strip() and "x.h5" in errors[1][1]
    finally:
        close_window(qtbot, w)


def test_save_and_retrain(qtbot, lwindow, tmp_path, monkeypatch):
    w, st = lwindow, lwindow.state
    first = train_simulated(qtbot, w, epochs=2)
    lab = st.labelling
    n_accepted = lab.accept_confident(0.5)
    assert n_accepted == int((lab.candidates.confidence >= 0.5).sum())
    dest = tmp_path / "retrain.h5"
    save_as(monkeypatch, dest)
    w.labelling_view.retrain_button.click()
    qtbot.waitUntil(lambda: st.catalog.dataset.source == str(dest), timeout=10_000)
    qtbot.waitUntil(lambda: st.runs.current_run is not first, timeout=10_000)
    new = st.runs.current_run
    assert new.config.data.label_fraction == 1.0
    assert new.config.loss.method == first.config.loss.method
    # issue 22, item 12: the form shows the new run's settings, so Start again runs them (not
    # the first run's 0.25, which would hide most of the new labels) ...
    assert w.training_panel.config() == new.requested
    assert w.training_panel.config().data.label_fraction == 1.0
    # ... and its "auto" settings are set again from the new file, not copied from the first run
    assert first.requested.schedule.r_end == new.requested.schedule.r_end == "auto"
    qtbot.waitUntil(lambda: new.state == "finished", timeout=20_000)
    n_unlab = int((st.catalog.dataset.train.labels < 0).sum())
    assert len(lab.candidates) == n_unlab == len(first.pseudo.indices) - n_accepted


def test_app_flags_train_a_simulated_rate_and_show_the_labels(qtbot, lwindow, gui_h5):
    from avexplorer.app import build_parser, open_initial

    train = ["--train", "psd", "--epochs", "2", "--label-fraction", "0.25"]
    args = build_parser().parse_args(["--data", str(gui_h5), *train, "--tab", "labels"])
    open_initial(lwindow, args)
    qtbot.waitUntil(lambda: lwindow.state.runs.current_run is not None, timeout=20_000)
    run = lwindow.state.runs.current_run
    assert run.config.data.label_fraction == 0.25
    assert lwindow.tabs.currentWidget() is lwindow.labelling_view
    qtbot.waitUntil(lambda: run.pseudo is not None, timeout=20_000)
    qtbot.waitUntil(lambda: len(lwindow.state.labelling.candidates) > 0, timeout=20_000)


def test_real_training_fills_the_view(qtbot, tmp_path, gui_h5):
    """core.training.loop's own PseudoLabels (in a thread, not the fake) index the open dataset."""
    from core.training.loop import train

    w = make_window(qtbot, tmp_path, gui_h5, train)
    try:
        small_config(w, "psd", 2)
        w.training_panel.set_values(**{"data.label_fraction": FRACTION, "threads": 1})
        w.state.runs.request_training(w.training_panel.config())
        run = w.state.runs.current_run
        qtbot.waitUntil(lambda: run.state == "finished", timeout=120_000)
        lab, data = w.state.labelling, w.state.catalog.dataset
        hidden = np.flatnonzero(~with_label_fraction(data, FRACTION, 0).train.labelled)
        assert np.array_equal(lab.candidates.indices, hidden)
        assert np.array_equal(lab.candidates.true_labels, data.train.labels[hidden])
        assert ((lab.candidates.confidence > 0) & (lab.candidates.confidence <= 1)).all()
        x, y = lab.accuracy_curve()
        assert list(x) == [1, 2] and np.allclose(y[-1], lab.candidates.accuracy)
        # a run read back from its folder keeps the curve (history.jsonl's "pseudo")
        from avexplorer import run_records

        restored = run_records.read_epochs(run.out_dir)
        assert np.allclose([e.pseudo_accuracy for e in restored], y)
    finally:
        close_window(qtbot, w)


def test_digit_keys_name_the_class():
    from avexplorer.widgets.labelling_view import digit_classes

    digits = tuple(str(d) for d in range(10))
    assert digit_classes(digits) == {d: d for d in range(10)}  # the demo: key 0 is class "0"
    assert digit_classes(("cat", "dog", "owl")) == {1: 0, 2: 1, 3: 2}
    assert digit_classes(tuple(f"c{i}" for i in range(12)))[0] == 9


# ----- pseudo-labels of a run reopened later, or of a checkpoint file ---------------------------
def _train_headless(out, method: str, gui_h5) -> None:
    """A real 2-epoch run with half the train labels hidden, written to ``out`` (as the app's
    training process or the CLI writes it)."""
    from core.training.config import RunConfig, method_config
    from core.training.loop import train

    cfg = method_config(method, RunConfig()).replace(
        **{
            "optim.epochs": 2,
            "optim.batch_size": 16,
            "model.hidden": 32,
            "model.dim": 16,
            "threads": 1,
            "data.label_fraction": 0.5,
        }
    )
    for _ in train(cfg, load_h5(gui_h5), out_dir=out):
        pass


def test_a_run_reopened_after_a_relaunch_shows_its_pseudo_labels(qtbot, tmp_path, gui_h5):
    """A finished run read back from its folder: picking it recomputes its teacher's
    pseudo-labels from its checkpoint, off the GUI thread, and the tab lists them."""
    from core.training.checkpoint import load_checkpoint
    from core.training.pseudo_labels import checkpoint_pseudo_labels

    folder = tmp_path / "runs" / "20261201-120000-psd-1"
    _train_headless(folder, "psd", gui_h5)  # listed from its checkpoint (no run.json)
    ckpt = load_checkpoint(folder / "model.pt")
    w = make_window(qtbot, tmp_path, gui_h5, fake_train)
    try:
        lab, view = w.state.labelling, w.labelling_view
        (run,) = w.state.runs.values()
        assert run.pseudo is None
        w.training_panel.runs.setCurrentRow(0)
        qtbot.waitUntil(lambda: lab.candidates.epoch is not None, timeout=30_000)
        expected = checkpoint_pseudo_labels(ckpt, load_h5(gui_h5))
        assert lab.candidates.epoch == ckpt.epoch == expected.epoch
        assert np.array_equal(lab.candidates.indices, expected.indices)
        assert np.array_equal(lab.candidates.predicted, expected.predicted)
        assert view.model.rowCount() == len(expected.indices) == 32
        said = f"Pseudo-labels of {folder.name}'s teacher, epoch {ckpt.epoch}"
        assert said in view.summary.text()
    finally:
        close_window(qtbot, w)


def test_a_checkpoint_without_pseudo_labels_says_why(qtbot, window, tmp_path, gui_h5):
    """infonce trains no class head: the tab says so in words instead of an empty column."""
    _train_headless(tmp_path / "infonce", "infonce", gui_h5)
    window.load_checkpoint(str(tmp_path / "infonce" / "model.pt"))
    lab = window.state.labelling
    qtbot.waitUntil(lambda: "no class head" in lab.note, timeout=30_000)
    assert lab.run_id == CHECKPOINT_RUN and lab.candidates.epoch is None
    assert len(lab.candidates) == 32  # the clips its run hid are still listed, to label
    assert "infonce trains no class head" in window.labelling_view.summary.text()
