"""Settings set from the data: the one place an "auto" config field gets its value.

A field declared with ``core.training.config.auto_field`` is "auto" unless the user sets it. When a
run starts, ``resolve`` replaces every "auto" with a value from the train split's labels (the
labelled share of the train pairs and the labelled pairs per class, after
``data.label_fraction`` hid some), and says what it chose in one line.
``core.training.loop.train`` calls it first thing, so the CLI, the app and the library resolve the
same way; the run records the resolved values (checkpoints, config.json, the app's run.json),
prints the line first, and a resumed run reuses the recorded values.

With the paper's recipe (``recipe = "paper"``), and for triplet and infonce, which have no
distillation to tune, "auto" takes the field's paper value (METHOD.md's psd).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.data.dataset import AVDataset
from core.data.labels import hide_labels
from core.training.config import AUTO, RunConfig, auto_fields, ignored_fields

# The rule's thresholds, in labelled train pairs a class, and why (docs/results.md, "One default
# for every label rate"). Below FEW the teacher learns from a handful of labels and is wrong about
# most unlabelled pairs, while the pairs themselves still say which sound goes with which picture:
# the plain contrastive term brought psd from far below infonce up to it on the demo and AVE-like
# at 1-2 labels a class. From MANY on the teacher is right about most unlabelled pairs, and the
# contrastive term whose positives are the clips the labels or the teacher put in the anchor's
# class added to psd on VEGAS-like. In between, and with every label on the small sets, either
# term cost points (AVE-like at 4.5 a class lost 3, the demo at 4 gained half a point). Both
# thresholds sit between measured points (FEW between 2 and 4 a class, MANY between 91 and 101):
# a fit to these data sets, not a law.
FEW = 3.0
MANY = 100.0


def auto_settings(label_rate: float, labelled_per_class: float) -> dict[str, Any]:
    """psd's value of every auto field for a train split whose share ``label_rate`` of pairs
    carries a label (0 < label_rate <= 1), ``labelled_per_class`` labelled pairs a class on
    average. Pure: no I/O, no config.

    - r_end: 1 (every label the split has is used at every step; the unlabelled pairs already
      fill U) whenever some pairs are unlabelled, the paper's 0.3 when all are labelled.
    - contrastive term (weight w, soft share beta): w 1 with beta 0 (the plain pairs) below FEW
      labelled pairs a class; w 1 with beta 1 (the teacher's class-mates as positives) from MANY
      on; otherwise off.
    - learning-rate schedule and gradient clipping: the paper's (constant, none); neither stopped
      the late decay of noisy-label runs (docs/results.md).
    """
    if labelled_per_class < FEW:
        weight, soft = 1.0, 0.0
    elif labelled_per_class >= MANY:
        weight, soft = 1.0, 1.0
    else:
        weight, soft = 0.0, 0.0
    return paper_settings() | {
        "schedule.r_end": 1.0 if label_rate < 1.0 else 0.3,
        "loss.contrastive_weight": weight,
        "loss.contrastive_soft": soft,
    }


def paper_settings() -> dict[str, Any]:
    """The paper's value of every auto field (METHOD.md's psd, no contrastive term)."""
    return auto_fields()


@dataclass(frozen=True)
class Labels:
    """What the rule reads of a train split: its labelled share and labelled pairs a class."""

    rate: float
    per_class: float


def train_labels(config: RunConfig, data: AVDataset) -> Labels:
    """The labels of ``data``'s train split once ``config.data.label_fraction`` has hidden some:
    what the run's losses will see."""
    train = hide_labels(data.train, config.data.label_fraction, config.data.label_seed)
    labelled = int(np.sum(train.labelled))
    return Labels(labelled / len(train) if len(train) else 0.0, labelled / max(data.num_classes, 1))


def label_rate(config: RunConfig, data: AVDataset) -> float:
    """The share of ``data``'s train pairs that keep a label (``train_labels(...).rate``)."""
    return train_labels(config, data).rate


def resolve(
    config: RunConfig, data: AVDataset, recorded: RunConfig | None = None
) -> tuple[RunConfig, str]:
    """``config`` with every "auto" field set, and the line that says so, e.g.
    "psd: 5.0 % of train pairs labelled (101 a class) -> r_end 1, contrastive weight 0.5 (auto)".

    A value the user set is kept as it is. With ``recorded`` (the config a resumed run saved),
    the auto fields take the values recorded there.
    """
    labels = train_labels(config, data)
    return resolve_at(config, labels.rate, labels.per_class, recorded=recorded)


def resolve_at(
    config: RunConfig,
    rate: float,
    per_class: float | None = None,
    recorded: RunConfig | None = None,
) -> tuple[RunConfig, str]:
    """``resolve`` for known label statistics (``per_class`` may be left out when the rule is
    not consulted: the paper's recipe, the baselines, a resumed run)."""
    method = config.loss.method
    unresolved = config.unresolved()
    if recorded is not None:
        how, values = "as recorded", _values(recorded, unresolved)
    elif config.recipe == "paper" or method != "psd":  # the baselines: nothing to tune by labels
        how, values = "paper recipe", paper_settings()
    elif unresolved:
        if per_class is None:
            raise ValueError("resolve_at: the rule needs the labelled pairs per class")
        how, values = "auto", auto_settings(rate, per_class)
    else:
        how, values = "auto", {}
    resolved = config.replace(**{dotted: values[dotted] for dotted in unresolved})
    shown = sorted(
        (dotted for dotted in auto_fields() if dotted not in ignored_fields(method)),
        key=lambda dotted: dotted != "schedule.r_end",  # the setting few labels change most
    )
    head = f"{method}: {100 * rate:.1f} % of train pairs labelled"
    if per_class is not None:
        head += f" ({round(per_class, 1):g} a class)"
    if not shown:
        return resolved, head
    flat = _values(resolved, shown)
    kept = _values(recorded, shown) if recorded is not None else {}
    groups: dict[str, list[str]] = {}  # origin -> "name value", in the order shown
    for dotted in shown:
        auto = dotted in unresolved or kept.get(dotted, AUTO) == flat[dotted]
        groups.setdefault(how if auto else "set", []).append(
            f"{_name(dotted)} {_text(flat[dotted])}"
        )
    return resolved, f"{head} -> " + "; ".join(
        f"{', '.join(parts)} ({origin})" for origin, parts in groups.items()
    )


def _values(config: RunConfig, dotted_names: list[str]) -> dict[str, Any]:
    flat = config.flat()
    return {dotted: flat[dotted] for dotted in dotted_names}


def _name(dotted: str) -> str:
    leaf = dotted.split(".")[-1]
    return leaf if leaf in ("r_end", "r_start") else leaf.replace("_", " ")


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


__all__ = [
    "AUTO",
    "Labels",
    "auto_settings",
    "label_rate",
    "paper_settings",
    "resolve",
    "resolve_at",
    "train_labels",
]
