"""The run list tells runs apart and says what a run is doing: unique names across relaunches,
the label fraction of a run that hid labels, and "starting" in every view until its first step."""

from __future__ import annotations

from avexplorer import run_records
from core.training.config import RunConfig
from core.training.events import RunStarted
from tests.gui.conftest import close_window, make_window, small_config
from tests.gui.fake_training import fake_train


def _train(qtbot, w, **values):
    small_config(w, "psd", epochs=1)
    w.training_panel.set_values(**values)
    w.state.runs.request_training(w.training_panel.config())
    run = w.state.runs.current_run
    qtbot.waitUntil(lambda: not w.jobs.training, timeout=20_000)
    return run


def _item_text(w, rid):
    panel = w.training_panel
    return next(
        panel.runs.item(i).text()
        for i in range(panel.runs.count())
        if panel.runs.item(i).data(256) == rid  # Qt.ItemDataRole.UserRole
    )


def test_run_names_stay_unique_across_relaunches_and_show_the_label_fraction(
    qtbot, tmp_path, gui_h5
):
    w = make_window(qtbot, tmp_path, gui_h5, fake_train)
    try:
        first = _train(qtbot, w, **{"data.label_fraction": 0.25})
        assert first.name == "psd 1"
        assert "psd 1 · " in _item_text(w, first.id) and " · 25 % labels · " in first.label()
        assert " · 25 % labels · " in _item_text(w, first.id)
    finally:
        close_window(qtbot, w)
    # A run of other data recorded in the same runs folder: not listed here, but its name is
    # taken all the same (a legend of either dataset must never show two "psd 4").
    other = tmp_path / "runs" / "20261101-100000-psd-4"
    other.mkdir()
    run_records.write(
        other,
        {"name": "psd 4", "config": RunConfig().to_dict(), "dataset_key": {"classes": ["x"]}},
    )

    again = make_window(qtbot, tmp_path, gui_h5, fake_train)
    try:
        (restored,) = again.state.runs.values()
        assert restored.name == "psd 1" and " · 25 % labels · " in restored.label()
        second = _train(qtbot, again, **{"data.label_fraction": 1.0})
        assert second.name == "psd 5" and second.out_dir.name.endswith("-psd-5")
        assert "% labels" not in second.label()  # all labels: nothing to say
        names = [r.name for r in again.state.runs.values()]
        assert len(set(names)) == len(names) == 2
    finally:
        close_window(qtbot, again)


def test_a_starting_run_says_so_in_every_view(qtbot, window):
    """From Start until the training process's first event (tens of seconds on a busy machine)
    the progress bar, the status line, the run list, the heatmaps, the map and the Metrics tab
    say the run is starting, not "idle" or "start a training run"."""
    state, panel = window.state, window.training_panel
    small_config(window, "psd", epochs=3)
    run = state.runs.new_run(panel.config())  # what Start does before the process is up
    assert run.state == "starting"
    assert panel.progress.format() == f"{run.name}: starting…"
    assert panel.status.text() == run.starting_text
    assert "starting" in run.starting_text and run.name in run.starting_text
    assert _item_text(window, run.id).endswith("[starting]")
    assert window.heatmaps.info.text() == run.starting_text
    assert window.map.plot.getPlotItem().titleLabel.text == run.starting_text
    assert window.metrics_view.status.text().startswith(run.starting_text)
    assert not panel.start_button.isEnabled() and panel.stop_button.isEnabled()

    # The process is up: it says so until the first step's numbers replace it.
    config = panel.config().to_dict()
    state.runs.handle_events(run.id, [RunStarted(config, "cpu", 64, 16, 4, 3, 1, 0)])
    assert run.state == "running"
    assert panel.progress.format() == f"{run.name} · epoch 1/3 · first step…"
    assert _item_text(window, run.id).endswith("[running]")
    state.runs.run_ended(run.id)  # no process behind it: end it as its worker would
    assert run.state == "stopped"
