"""A fake event source for GUI tests: the events ``core.training.loop.train`` yields, made up.

``JobController(state, train_fn=fake_train)`` runs it in a thread instead of a training process,
so tests of the app's behaviour (plots, heatmaps, pause and stop, runs kept on disk) do not pay
for torch and a child process. It honours the ``TrainControl`` like the real loop, and writes
``history.jsonl`` to the run folder as the core does. The numbers follow fixed formulas so tests
can check what the views show against them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from core.evaluation.scores import MapScores
from core.training.auto import resolve
from core.training.events import (
    AlignmentSnapshot,
    EpochEnd,
    Paused,
    Resumed,
    RunFinished,
    RunStarted,
    StepEnd,
)


def val_scores(epoch: int) -> MapScores:
    """The fake val scores of the epoch at position ``epoch`` (0 for the first): A2V and V2A apart
    enough to tell the curves apart."""
    a2v, v2a = 0.3 + 0.05 * epoch, 0.25 + 0.04 * epoch
    recall = {"a2v": 0.1 + 0.05 * epoch, "v2a": 0.05 + 0.05 * epoch}
    median = {"a2v": 8.0 - epoch, "v2a": 10.0 - epoch}
    return MapScores(a2v, v2a, (a2v + v2a) / 2, 16, recall_at_1=recall, median_rank=median)


def fake_train(config, data, out_dir=None, control=None, step_seconds: float = 0.002):
    config, settings = resolve(config, data)  # as core.training.loop.train does, first thing
    batch = config.optim.batch_size
    n = len(data.train)
    sizes = [batch] * (n // batch) + ([n % batch] if n % batch else [])
    epochs = config.optim.epochs
    yield RunStarted(
        config.to_dict(), "cpu", n, len(data.val), len(sizes), epochs, 1, 0, settings=settings
    )
    out = Path(out_dir) if out_dir is not None else None
    history = []
    for i in range(epochs):  # epochs and steps are numbered from 1, as core/training/events.py says
        epoch = i + 1
        r = 1.0 - 0.5 * i / max(epochs - 1, 1)
        for step, size in enumerate(sizes):
            if control is not None and control.paused:
                yield Paused(epoch, step)
                control.wait_while_paused()
                if not control.stopped:
                    yield Resumed(epoch, step)
            if control is not None and control.stopped:
                yield RunFinished(True, i, val_scores(max(i - 1, 0)))
                return
            g = i * len(sizes) + step + 1
            loss = 1.0 / g
            yield StepEnd(
                epoch, step + 1, g, epochs * len(sizes), {"total": loss, "cross": loss / 2}, r
            )
            if (config.snapshot_every and (g - 1) % config.snapshot_every == 0) or step == len(
                sizes
            ) - 1:
                yield snapshot(epoch, g, size, data)
            time.sleep(step_seconds)
        val = val_scores(i)
        history.append(
            {
                "epoch": epoch,
                "r": r,
                "losses": {"total": 0.5},
                "val": val.as_dict(),
                "seconds": 0.1,
                "best": True,
            }
        )
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            with open(out / "history.jsonl", "a") as f:
                f.write(json.dumps(history[-1]) + "\n")
        yield EpochEnd(epoch, {"total": 0.5}, val, r, 0.1, True)
    yield RunFinished(False, epochs, val_scores(epochs - 1), history=history)


def snapshot(epoch: int, global_step: int, size: int, data) -> AlignmentSnapshot:
    idx = np.arange(size, dtype=np.int64)
    labels = data.train.labels[idx].astype(np.int64)
    same = (labels[:, None] == labels[None, :]).astype(np.float32)
    return AlignmentSnapshot(
        epoch, global_step, same, same * 0.8 - 0.1, labels, np.ones(size, bool), idx
    )
