"""Quitting while a run trains loses nothing: the training process is stopped and gone when the
window has closed, the run is recorded as stopped with its epochs and step curves, and a relaunch
shows those curves and resumes the run where it stopped (the real training process: it is what
is tested)."""

from __future__ import annotations

import json

import numpy as np
from PySide6.QtCore import Qt

from tests.gui.conftest import close_window, make_window, small_config


def test_closing_the_window_stops_records_and_offers_resume(qtbot, tmp_path, gui_h5):
    w = make_window(qtbot, tmp_path, gui_h5, None)
    small_config(w, "psd", epochs=500)  # far more than it gets through before the close
    qtbot.mouseClick(w.training_panel.start_button, Qt.MouseButton.LeftButton)
    run = w.state.runs.current_run
    qtbot.waitUntil(lambda: len(run.epochs) >= 2, timeout=300_000)
    proc = w.jobs._children[run.id]
    assert proc.is_alive()

    w.close()  # as Ctrl+Q or the close button: the window's closeEvent
    # close() returns only once the training process has exited (it saves at its step) or,
    # past its grace, has been ended: it is gone now, and the run's end has been recorded.
    assert not proc.is_alive()
    assert not w.jobs.training
    assert run.state == "stopped"
    record = json.loads((run.out_dir / "run.json").read_text())
    history = (run.out_dir / "history.jsonl").read_text().splitlines()
    assert record["state"] == "stopped"
    assert record["epochs"] == len(run.epochs) == len(history) >= 2
    assert (run.out_dir / "last.pt").is_file() and (run.out_dir / "steps.npz").is_file()
    steps_before = list(run.steps)
    w.state.close()

    # Relaunch: the run is listed as stopped with its curves, and Resume is offered.
    again = make_window(qtbot, tmp_path, gui_h5, None)
    try:
        (restored,) = again.state.runs.values()
        assert restored.state == "stopped" and restored.restored
        assert restored.steps == steps_before
        assert set(restored.losses) == set(run.losses) and "total" in restored.losses
        assert [e.epoch for e in restored.epochs] == [e.epoch for e in run.epochs]
        panel = again.training_panel
        assert "[stopped]" in panel.runs.item(0).text()
        panel.runs.setCurrentRow(0)
        assert again.state.runs.current_run_id == restored.id
        assert panel.resume_button.isEnabled()

        again.state.runs.set_run_visible(restored.id, True)
        again.plots.refresh()
        x, y = again.plots.loss_curves[(restored.id, "total")].getData()
        assert list(x) == steps_before and np.isfinite(y).all()

        # Resume continues the same run in its folder (train --resume's core path), its curves
        # going on from the step it stopped at.
        done = len(restored.epochs)
        qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
        assert restored.state == "starting" and not panel.resume_button.isEnabled()
        qtbot.waitUntil(lambda: len(restored.epochs) > done, timeout=300_000)
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not again.jobs.training, timeout=120_000)
        assert restored.state == "stopped"
        assert restored.steps[: len(steps_before)] == steps_before
        assert np.all(np.diff(restored.steps) == 1)  # no step twice, none missing
        epochs = [e.epoch for e in restored.epochs]
        assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) > done
        history = (restored.out_dir / "history.jsonl").read_text().splitlines()
        assert [json.loads(h)["epoch"] for h in history] == epochs
        assert json.loads((restored.out_dir / "run.json").read_text())["epochs"] == len(epochs)
    finally:
        close_window(qtbot, again)
