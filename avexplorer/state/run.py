"""One training run and what it has reported: ``Run``, which the runs part (``state.runs``) keeps.

A run is live (trained in this session, fed by its events) or restored (read back from its folder
by ``avexplorer.run_records``); either way it holds its step losses, epoch metrics, latest
alignment snapshot and pseudo-labels, and its test embeddings and 2-D layouts per epoch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtGui import QColor

from avexplorer.projections import EpochEmbeddings, Layout
from core.evaluation.scores import MapScores
from core.training.config import RunConfig
from core.training.events import AlignmentSnapshot, EpochEnd, PseudoLabels, RunFinished, StepEnd

ACTIVE_STATES = ("starting", "running", "paused")
# The run id under which a checkpoint loaded from a file keeps its embeddings (it has no Run).
CHECKPOINT_RUN = -1
_RUN_PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6"]


def run_color(rid: int) -> QColor:
    """The colour of run ``rid`` in every plot and list."""
    return QColor(_RUN_PALETTE[(rid - 1) % len(_RUN_PALETTE)])


@dataclass
class Run:
    """One training run and everything it has reported so far."""

    id: int
    name: str
    # The run's settings: as requested (fields may be "auto") until it starts, then as resolved
    # by core.training.auto (what it trains with and records); ``requested`` keeps the request.
    config: RunConfig
    color: QColor
    out_dir: Path
    dataset: str = ""  # the name of the dataset it trained on
    dataset_key: dict[str, Any] = field(default_factory=dict)  # run_records.dataset_key of it
    created: float = field(default_factory=time.time)  # wall-clock start, for its label
    state: str = "starting"  # starting, running, paused, finished, stopped, failed
    restored: bool = False  # read back from its folder, not trained in this session
    total_steps: int = 0
    steps_per_epoch: int = 0
    total_epochs: int = 0
    started: float = field(default_factory=time.monotonic)
    steps: list[int] = field(default_factory=list)
    losses: dict[str, list[float]] = field(default_factory=dict)
    r_steps: list[float] = field(default_factory=list)
    last_step: StepEnd | None = None
    epochs: list[EpochEnd] = field(default_factory=list)
    snapshot: AlignmentSnapshot | None = None
    pseudo: PseudoLabels | None = None  # the latest epoch's pseudo-labels (labelling view)
    embeddings: dict[int, EpochEmbeddings] = field(default_factory=dict)
    layouts: dict[tuple[int, str], Layout] = field(default_factory=dict)
    checkpoints: dict[str, Path] = field(default_factory=dict)
    finished: RunFinished | None = None
    visible: bool = True  # overlaid in the plots
    requested: RunConfig | None = None  # the settings as asked for, "auto" fields unresolved
    settings: str = ""  # what its "auto" fields became (RunStarted.settings)
    first_step: int = 0  # the global step this session's training started after (a resume's)

    @property
    def method(self) -> str:
        return self.config.loss.method

    @property
    def active(self) -> bool:
        """Training now (or about to): the one definition every view and job uses."""
        return self.state in ACTIVE_STATES

    @property
    def starting_text(self) -> str:
        """What every view says while the run starts (the training process loads torch and the
        data before its first step, which takes a while on a busy machine)."""
        return f"{self.name} is starting: the training process is loading…"

    @property
    def best_val(self) -> float | None:
        return max((e.val.avg for e in self.epochs), default=None)

    def label(self) -> str:
        """'psd 3 · demo digits · 10 % labels · 2026-12-01 14:02 · best MAP 0.612', for lists and
        menus (the label fraction only when the run hid labels)."""
        best = self.best_val
        fraction = self.config.data.label_fraction
        parts = [
            self.name,
            self.dataset or "?",
            *([f"{100 * fraction:g} % labels"] if fraction < 1 else []),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created)),
            f"best MAP {best:.3f}" if best is not None else "no epoch yet",
        ]
        return " · ".join(parts)

    def best_checkpoint(self) -> Path | None:
        return (
            self.checkpoints.get("best")
            or self.checkpoints.get("last")
            or next(iter(self.checkpoints.values()), None)
        )

    def eta_seconds(self) -> float | None:
        if self.last_step is None or self.total_steps == 0:
            return None
        done = self.last_step.global_step
        if done <= self.first_step:
            return None
        rate = (time.monotonic() - self.started) / (done - self.first_step)
        return rate * (self.total_steps - done)

    def continue_from(self, start_epoch: int, start_step: int) -> None:
        """Training (re)starts at step ``start_step`` of epoch ``start_epoch`` (RunStarted): a
        resumed run keeps its curves up to there and drops what its checkpoint does not hold (the
        steps of an epoch the app saw but that ended before it was saved)."""
        self.first_step = (start_epoch - 1) * self.steps_per_epoch + start_step
        keep = sum(1 for s in self.steps if s <= self.first_step)
        del self.steps[keep:], self.r_steps[keep:]
        for values in self.losses.values():
            del values[keep:]
        self.epochs = [e for e in self.epochs if e.epoch < start_epoch]

    def add_step(self, ev: StepEnd) -> None:
        self.steps.append(ev.global_step)
        self.r_steps.append(ev.r)
        n = len(self.steps) - 1
        for name, value in ev.losses.items():
            # A component that appears late is padded with NaN so every list stays aligned.
            self.losses.setdefault(name, [float("nan")] * n).append(float(value))
        for values in self.losses.values():
            if len(values) < len(self.steps):
                values.append(float("nan"))
        self.last_step = ev


def map_scores_text(m: MapScores | None) -> str:
    if m is None:
        return "—"
    return f"A2V {m.a2v:.3f} · V2A {m.v2a:.3f} · avg {m.avg:.3f}"
