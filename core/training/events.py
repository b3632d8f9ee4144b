"""The small immutable records that ``core.training.loop.train`` yields.

Front ends (the CLI's progress bar, the app's worker) consume the same stream: nothing here knows
who is listening.

Epochs and steps are numbered from 1, as a person counts them, in every event, in
``history.jsonl`` and in a checkpoint's run record: ``EpochEnd(epoch=1)`` ends the first epoch and
the CLI, the app and the files all call it "epoch 1". The training loop is the one place that
turns its position into these numbers; ``numbered_history`` reads records written before then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.evaluation.scores import MapScores


@dataclass(frozen=True)
class RunStarted:
    config: dict
    device: str
    n_train: int
    n_val: int
    steps_per_epoch: int
    total_epochs: int
    start_epoch: int  # the epoch the run starts in: 1, or later when resuming
    start_step: int  # steps of start_epoch already done, > 0 when resuming mid-epoch
    n_labelled: int = -1  # train pairs with a label (after data.label_fraction), -1: unknown
    # what the "auto" settings became, e.g. "psd: 5.0 % of train pairs labelled -> r_end 1 (auto)"
    settings: str = ""


@dataclass(frozen=True)
class StepEnd:
    epoch: int  # from 1
    step: int  # the step just done within the epoch, from 1
    global_step: int  # the step just done over the run, from 1 to total_steps
    total_steps: int
    losses: dict[str, float]  # "total" and each component of the method
    r: float  # annotated fraction used at this step


@dataclass(frozen=True)
class AlignmentSnapshot:
    """The batch's soft-alignment matrix S and the student's cosine similarities.

    Rows are audio items, columns visual items, in batch order (the viewer sorts by class).
    """

    epoch: int  # from 1
    global_step: int  # the step it was taken at, from 1 (as StepEnd)
    soft: np.ndarray  # [n, n] float32, S_ij = <q_i^a, q_j^v>
    student: np.ndarray  # [n, n] float32, cosine(f_a(a_i), f_v(v_j))
    labels: np.ndarray  # [n] int64 labels the step used (-1: unlabelled pair)
    annotated: np.ndarray  # [n] bool, True for pairs in the annotated subset A
    indices: np.ndarray  # [n] int64 positions of the pairs in the train split


@dataclass(frozen=True)
class EpochEnd:
    epoch: int  # the epoch that ended, from 1
    losses: dict[str, float]  # mean over the epoch's steps
    val: MapScores
    r: float
    seconds: float
    best: bool  # val avg MAP improved on every earlier epoch
    # Share of the unlabelled train pairs whose pseudo-label (PseudoLabels) equals the hidden
    # label; None unless labels were hidden with data.label_fraction < 1.
    pseudo_accuracy: float | None = None


@dataclass(frozen=True)
class PseudoLabels:
    """At each epoch end, the predicted class and confidence of every unlabelled train pair.

    psd's come from its teacher (the soft labels it distils), triplet's from the student's label
    head; infonce has no trained head and sends none. Positions index ``AVDataset.train`` as the
    run loaded it (val carved with the run's seed), so ``train.paths[indices]`` are the clips.
    """

    epoch: int  # the epoch at whose end they were made, from 1
    indices: np.ndarray  # [U] int64 positions in the train split
    predicted: np.ndarray  # [U] int64 class ids
    confidence: np.ndarray  # [U] float32, the predicted class's probability
    source: str  # "teacher" or "student"
    true_labels: np.ndarray | None = None  # [U] hidden labels when simulated, else None
    accuracy: float | None = None  # mean(predicted == true_labels) when known


@dataclass(frozen=True)
class CheckpointSaved:
    path: Path
    epoch: int  # the epoch it was saved in (at its end for "best" and "last"), from 1
    kind: str  # "best", "last" or "interrupt"


@dataclass(frozen=True)
class Paused:
    epoch: int  # from 1
    step: int  # steps of the epoch done before the pause


@dataclass(frozen=True)
class Resumed:
    epoch: int  # from 1
    step: int  # steps of the epoch done before the pause


@dataclass(frozen=True)
class RunFinished:
    stopped: bool  # True when stopped early by the user
    best_epoch: int  # from 1; 0 when no epoch finished
    best_val: MapScores | None
    test: MapScores | None = None  # best model on the test split (only when the run completed)
    history: list[dict] = field(default_factory=list)


Event = (
    RunStarted
    | StepEnd
    | AlignmentSnapshot
    | EpochEnd
    | PseudoLabels
    | CheckpointSaved
    | Paused
    | Resumed
    | RunFinished
)


def numbered_history(records: list[dict]) -> list[dict]:
    """History records (``history.jsonl`` lines, a checkpoint's run history) with epochs from 1.

    Runs made before epochs were numbered from 1 wrote them from 0; a history always holds its
    run's first epoch, so one that holds an epoch 0 is of that kind and is shifted by one.
    """
    if not any(r.get("epoch") == 0 for r in records):
        return records
    return [{**r, "epoch": int(r["epoch"]) + 1} for r in records]
