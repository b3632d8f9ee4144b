"""The small immutable records that ``core.training.train`` yields.

Front ends (the CLI's progress bar, the app's worker) consume the same stream: nothing here knows
who is listening.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.scores import MapScores


@dataclass(frozen=True)
class RunStarted:
    config: dict
    device: str
    n_train: int
    n_val: int
    steps_per_epoch: int
    total_epochs: int
    start_epoch: int  # > 0 when resuming
    start_step: int  # step within start_epoch, > 0 when resuming mid-epoch
    n_labelled: int = -1  # train pairs with a label (after data.label_fraction), -1: unknown


@dataclass(frozen=True)
class StepEnd:
    epoch: int  # 0-based
    step: int  # 0-based within the epoch
    global_step: int  # 0-based over the run
    total_steps: int
    losses: dict[str, float]  # "total" and each component of the method
    r: float  # annotated fraction used at this step


@dataclass(frozen=True)
class AlignmentSnapshot:
    """The batch's soft-alignment matrix S and the student's cosine similarities.

    Rows are audio items, columns visual items, in batch order (the viewer sorts by class).
    """

    epoch: int
    global_step: int
    soft: np.ndarray  # [n, n] float32, S_ij = <q_i^a, q_j^v>
    student: np.ndarray  # [n, n] float32, cosine(f_a(a_i), f_v(v_j))
    labels: np.ndarray  # [n] int64 labels the step used (-1: unlabelled pair)
    annotated: np.ndarray  # [n] bool, True for pairs in the annotated subset A
    indices: np.ndarray  # [n] int64 positions of the pairs in the train split


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
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

    epoch: int
    indices: np.ndarray  # [U] int64 positions in the train split
    predicted: np.ndarray  # [U] int64 class ids
    confidence: np.ndarray  # [U] float32, the predicted class's probability
    source: str  # "teacher" or "student"
    true_labels: np.ndarray | None = None  # [U] hidden labels when simulated, else None
    accuracy: float | None = None  # mean(predicted == true_labels) when known


@dataclass(frozen=True)
class CheckpointSaved:
    path: Path
    epoch: int
    kind: str  # "best", "last" or "interrupt"


@dataclass(frozen=True)
class Paused:
    epoch: int
    step: int


@dataclass(frozen=True)
class Resumed:
    epoch: int
    step: int


@dataclass(frozen=True)
class RunFinished:
    stopped: bool  # True when stopped early by the user
    best_epoch: int
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
