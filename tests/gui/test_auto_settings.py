"""The run form and "auto" settings: the form shows what auto resolves to for the open dataset,
a run started from the form (or from ``--train``) resolves through core.training.auto exactly so,
records the values, and a value the user sets always wins."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt

from core.training.auto import label_rate, paper_settings, resolve
from core.training.config import RunConfig
from tests.gui.conftest import small_config


def _finished(window):
    run = window.state.runs.current_run
    return run is not None and run.state in ("finished", "stopped") and not window.jobs.training


def test_the_form_shows_what_auto_resolves_to_and_a_set_value_wins(qtbot, window):
    panel, form = window.training_panel, window.training_panel.form
    data = window.state.catalog.dataset
    r_end = form.fields["schedule.r_end"]
    assert panel.config().schedule.r_end == "auto"  # the default is auto, not a number
    full = resolve(panel.config(), data)
    assert panel.auto_note.text() == full[1] and not panel.auto_note.isHidden()
    assert r_end.text() == f"auto ({full[0].schedule.r_end:g})"

    panel.set_values(**{"data.label_fraction": 0.1})
    few, line = resolve(panel.config(), data)
    rate = label_rate(panel.config(), data)
    assert line.startswith(f"psd: {100 * rate:.1f} % of train pairs labelled (")
    assert panel.auto_note.text() == line
    assert r_end.text() == f"auto ({few.schedule.r_end:g})"

    panel.set_values(**{"schedule.r_end": 0.7})  # the user's value
    assert panel.config().schedule.r_end == 0.7 and "r_end 0.7 (set)" in panel.auto_note.text()
    panel.set_values(**{"schedule.r_end": "auto", "recipe": "paper"})
    assert panel.config().schedule.r_end == "auto"
    assert panel.auto_note.text().endswith("(paper recipe)")
    assert r_end.text() == f"auto ({paper_settings()['schedule.r_end']:g})"
    r_end.stepUp()  # one step up from "auto" is a value
    assert isinstance(panel.config().schedule.r_end, float)


def test_a_run_from_the_form_records_the_values_auto_chose(qtbot, window):
    panel = window.training_panel
    small_config(window, "psd", epochs=2)
    panel.set_values(**{"data.label_fraction": 0.1})
    requested = panel.config()
    expected, line = resolve(requested, window.state.catalog.dataset)
    shown = panel.auto_note.text()
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _finished(window), timeout=30_000)
    run = window.state.runs.current_run
    assert run.requested == requested and run.config == expected and not run.config.unresolved()
    assert run.settings == line and shown == line
    item = panel.runs.currentItem()
    assert line in item.toolTip()  # the run list says it too
    record = json.loads((run.out_dir / "run.json").read_text())
    assert RunConfig.from_dict(record["config"]) == expected
    assert RunConfig.from_dict(record["requested"]) == requested
    assert record["settings"] == line

    # restored after a relaunch: the resolved values, and what was asked for
    window.state.runs.remove_run(run.id)  # forgotten, its folder kept
    window.state.runs.restore_runs()
    again = next(r for r in window.state.runs.values() if r.out_dir == run.out_dir)
    assert (again.config, again.requested, again.settings) == (expected, requested, line)


def test_a_value_set_in_the_form_wins_over_auto_in_the_run(qtbot, window):
    panel = window.training_panel
    small_config(window, "psd", epochs=2)
    panel.set_values(**{"data.label_fraction": 0.1, "schedule.r_end": 0.55})
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _finished(window), timeout=30_000)
    run = window.state.runs.current_run
    assert run.config.schedule.r_end == 0.55 and "r_end 0.55 (set)" in run.settings


def test_app_train_flags_resolve_as_the_run_form_does(qtbot, window, tmp_path, monkeypatch):
    """issue 22, item 14: ``avexplorer --demo --train psd --label-fraction 0.1`` runs what the
    form shows for the same settings: one config, resolved by one function."""
    from avexplorer.app import build_parser, open_initial

    monkeypatch.setenv("AVEXPLORER_DEMO_CLIPS", str(tmp_path / "demo-clips"))
    monkeypatch.setattr(window.jobs, "build_demo_clips", lambda: None)
    requests = []
    window.state.signals.trainRequested.connect(requests.append)
    args = build_parser().parse_args(["--demo", "--train", "psd", "--label-fraction", "0.1"])
    open_initial(window, args)
    qtbot.waitUntil(lambda: bool(requests), timeout=60_000)
    data, panel = window.state.catalog.dataset, window.training_panel
    assert "demo" in (data.source or "").lower() or data.attrs.get("clips_dir")
    # the form shows the flags' settings and its note what the run will resolve
    assert requests[0] == panel.config()
    assert requests[0].data.label_fraction == 0.1 and requests[0].schedule.r_end == "auto"
    expected, line = resolve(panel.config(), data)
    assert panel.auto_note.text() == line
    qtbot.waitUntil(lambda: _finished(window), timeout=60_000)
    run = window.state.runs.current_run
    assert run.config == expected and run.settings == line
    assert line.endswith("(auto)") and "r_end 1" in line  # the few-label setting, applied
