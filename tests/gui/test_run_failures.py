"""A training run that fails is never reported as a success, and loses at most its current epoch:
the training process killed mid-run, and a run record that cannot be written at the run's end."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal

import pytest

from avexplorer.jobs.training_process import TrainingProcessError, train_in_process
from core.data.synthetic import make_dataset
from core.training.checkpoint import load_checkpoint
from core.training.config import method_config
from core.training.control import TrainControl
from core.training.events import CheckpointSaved, RunFinished
from tests.gui.conftest import small_config


def test_a_killed_training_process_fails_the_run_and_keeps_its_finished_epochs(tmp_path):
    ctx = mp.get_context("spawn")
    config = method_config("psd").replace(**{"optim.epochs": 100_000, "threads": 1})
    out = tmp_path / "run"
    batches = train_in_process(config, make_dataset("tiny"), out, TrainControl(ctx.Event), ctx)
    saved = 0
    with pytest.raises(TrainingProcessError) as failure:
        for batch in batches:
            assert not any(isinstance(ev, RunFinished) for ev in batch)
            lasts = [e.epoch for e in batch if isinstance(e, CheckpointSaved) and e.kind == "last"]
            saved = max([saved, *lasts])
            if saved >= 2:
                (child,) = [p for p in mp.active_children() if p.name == "avexplorer-train"]
                os.kill(child.pid, signal.SIGKILL)
    message = str(failure.value)
    assert "killed (SIGKILL)" in message and "did not finish" in message and str(out) in message
    assert load_checkpoint(out / "last.pt").epoch >= saved  # no more than the current epoch lost


def test_a_record_that_cannot_be_written_at_the_end_is_reported(qtbot, window, monkeypatch):
    from avexplorer import run_records
    from core.atomic import WriteError

    real, calls = run_records.write, []

    def full_at_the_end(folder, record):  # the record written at the start goes through
        calls.append(folder)
        if len(calls) > 1:
            raise WriteError(f"{folder / 'run.json'}: cannot write it ([Errno 28] No space left)")
        real(folder, record)

    monkeypatch.setattr(run_records, "write", full_at_the_end)
    small_config(window, "psd", epochs=2)
    window.state.runs.request_training(window.training_panel.config())
    run = window.state.runs.current_run
    qtbot.waitUntil(lambda: not window.jobs.training, timeout=20_000)
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=5_000)
    title, message = window.last_error
    assert title == "Run record not saved"
    assert "No space left" in message and str(run.out_dir) in message
    assert run.state == "finished"  # the run itself finished; only its record was not updated


def test_an_error_in_training_is_a_failed_run_now_and_after_a_relaunch(qtbot, tmp_path, gui_h5):
    """An exception in the training loop after its first epoch: the app says the run failed
    (dialog, run list, run.json), never finished, and still does after a relaunch."""
    import json

    from core.training.events import EpochEnd
    from tests.gui.conftest import close_window, make_window
    from tests.gui.fake_training import fake_train

    def fails_after_one_epoch(config, data, out_dir=None, control=None):
        for ev in fake_train(config, data, out_dir=out_dir, control=control):
            yield ev
            if isinstance(ev, EpochEnd):
                raise RuntimeError("the loop broke")

    w = make_window(qtbot, tmp_path, gui_h5, fails_after_one_epoch)
    try:
        small_config(w, "psd", epochs=3)
        w.state.runs.request_training(w.training_panel.config())
        run = w.state.runs.current_run
        qtbot.waitUntil(lambda: not w.jobs.training, timeout=20_000)
        assert run.state == "failed" and run.finished is None and len(run.epochs) == 1
        title, message = w.last_error
        assert title == "Training failed" and "the loop broke" in message
        assert w.training_panel.progress.format() == f"{run.name}: failed"
        assert "[failed]" in w.training_panel.runs.item(0).text()
        assert json.loads((run.out_dir / "run.json").read_text())["state"] == "failed"
    finally:
        close_window(qtbot, w)
    again = make_window(qtbot, tmp_path, gui_h5, fake_train)
    try:
        (restored,) = again.state.runs.values()
        assert restored.state == "failed" and "[failed]" in again.training_panel.runs.item(0).text()
    finally:
        close_window(qtbot, again)


def test_a_background_job_failing_with_a_runtime_error_is_reported_not_hung(qtbot, window):
    """torch raises RuntimeError; a generator job that does must end with an error dialog and
    leave the status bar, as any other failing job does."""
    from avexplorer.jobs.runner import start

    def steps():
        yield 1
        raise RuntimeError("shape mismatch in the encoder")

    start(window.state, "Encoding clips", steps)
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=10_000)
    title, message = window.last_error
    assert title == "Encoding clips failed"
    assert message.startswith("RuntimeError: shape mismatch in the encoder")
    qtbot.waitUntil(lambda: not window.state.tasks, timeout=5_000)
