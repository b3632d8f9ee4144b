"""A training run that fails is never reported as a success, and loses at most its current epoch:
the training process killed mid-run, and a run record that cannot be written at the run's end."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal

import pytest

from avexplorer.jobs.training_process import TrainingProcessError, train_in_process
from core.checkpoint import load_checkpoint
from core.config import method_config
from core.control import TrainControl
from core.events import CheckpointSaved, RunFinished
from core.synthetic import make_dataset
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
    window.state.request_training(window.training_panel.config())
    run = window.state.current_run
    qtbot.waitUntil(lambda: not window.jobs.training, timeout=20_000)
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=5_000)
    title, message = window.last_error
    assert title == "Run record not saved"
    assert "No space left" in message and str(run.out_dir) in message
    assert run.state == "finished"  # the run itself finished; only its record was not updated
