"""Epochs are numbered from 1 wherever a person meets them: the library's events, the CLI's lines,
``history.jsonl``, a checkpoint's stored epoch and run record. Files written when the numbers ran
from 0 read back numbered from 1."""

from __future__ import annotations

import json

import pytest
import torch

from avexplorer import run_records
from avexplorer.cli import main
from core.data.dataset import load_h5
from core.training.checkpoint import load_checkpoint
from core.training.events import (
    CheckpointSaved,
    EpochEnd,
    PseudoLabels,
    RunFinished,
    RunStarted,
    StepEnd,
)
from core.training.loop import train
from tests.core.test_cli import FAST


def test_library_cli_and_files_agree_on_epoch_numbers(tiny_h5, tmp_path, capsys):
    run = tmp_path / "cli"
    assert main(["train", str(tiny_h5), "--out", str(run), "--quiet", *FAST]) == 0
    out = capsys.readouterr().out.splitlines()
    epochs = [line.split(":")[0] for line in out if line.startswith("epoch ")]
    assert epochs == ["epoch 1", "epoch 2"]
    (best_line,) = [line for line in out if line.startswith("best epoch ")]

    history = [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    last = load_checkpoint(run / "last.pt")
    assert last.epoch == 2 and [h["epoch"] for h in last.run["history"]] == [1, 2]
    assert best_line.startswith(f"best epoch {last.run['best_epoch']};")
    assert load_checkpoint(run / "model.pt").epoch == last.run["best_epoch"]

    config = last.config.replace(**{"data.label_fraction": 0.5})  # pseudo-labels too
    events = list(train(config, load_h5(tiny_h5), out_dir=tmp_path / "lib"))
    started = events[0]
    assert isinstance(started, RunStarted) and (started.start_epoch, started.start_step) == (1, 0)
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [1, 2]
    assert [e.epoch for e in events if isinstance(e, PseudoLabels)] == [1, 2]
    saved = [e.epoch for e in events if isinstance(e, CheckpointSaved) and e.kind == "last"]
    assert saved == [1, 2]
    steps = [e for e in events if isinstance(e, StepEnd)]
    assert (steps[0].epoch, steps[0].step, steps[0].global_step) == (1, 1, 1)
    assert (steps[-1].epoch, steps[-1].global_step) == (2, steps[-1].total_steps)
    assert steps[-1].step == started.steps_per_epoch
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    best = [e.epoch for e in events if isinstance(e, EpochEnd) and e.best][-1]
    assert finished.best_epoch == best == load_checkpoint(tmp_path / "lib" / "model.pt").epoch
    assert [h["epoch"] for h in finished.history] == [1, 2]


def _as_written_before(run_dir, ckpt_name: str) -> None:
    """Rewrite a run folder as avexplorer wrote it when epochs were numbered from 0."""
    path = run_dir / ckpt_name
    payload = torch.load(path, weights_only=True)
    payload["version"] = 1
    payload["run"]["best_epoch"] -= 1
    for h in payload["run"]["history"]:
        h["epoch"] -= 1
    torch.save(payload, path)
    lines = [json.loads(x) for x in (run_dir / "history.jsonl").read_text().splitlines()]
    (run_dir / "history.jsonl").write_text(
        "".join(json.dumps({**h, "epoch": h["epoch"] - 1}) + "\n" for h in lines)
    )


def test_runs_written_with_epochs_from_0_read_back_from_1(tiny_h5, tmp_path):
    run = tmp_path / "old"
    assert main(["train", str(tiny_h5), "--out", str(run), "--quiet", *FAST]) == 0
    best = load_checkpoint(run / "last.pt").run["best_epoch"]
    _as_written_before(run, "last.pt")

    old = load_checkpoint(run / "last.pt")
    assert [h["epoch"] for h in old.run["history"]] == [1, 2] and old.run["best_epoch"] == best
    assert [e.epoch for e in run_records.read_epochs(run)] == [1, 2]

    resumed = ["train", str(tiny_h5), "--out", str(run), "--quiet", "--resume", "--epochs", "3"]
    assert main(resumed) == 0
    lines = (run / "history.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]


def test_step_records_written_from_0_read_back_from_1(tmp_path):
    """The app's steps.npz: the loss plot's step axis starts at 1 for old and new runs alike."""
    losses = {"total": [3.0, 2.0, 1.0]}
    run_records.write_steps(tmp_path, [0, 1, 2], losses, [1.0, 1.0, 0.9])  # as written before
    assert run_records.read_steps(tmp_path)[0] == [1, 2, 3]
    run_records.write_steps(tmp_path, [1, 2, 3], losses, [1.0, 1.0, 0.9])
    steps, read_losses, r = run_records.read_steps(tmp_path)
    assert steps == [1, 2, 3] and read_losses == losses and r == pytest.approx([1.0, 1.0, 0.9])
