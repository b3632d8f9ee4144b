"""Settings set from the data: the one place an "auto" config field gets its value.

A field declared with ``core.config.auto_field`` is "auto" unless the user sets it. When a run
starts, ``resolve`` replaces every "auto" with a value from the train split's label rate (the
labelled share of the train pairs, after ``data.label_fraction`` hid some), and says what it
chose in one line. ``core.training.train`` calls it first thing, so the CLI, the app and the
library resolve the same way; the run records the resolved values (checkpoints, config.json,
the app's run.json), prints the line first, and a resumed run reuses the recorded values.

With the paper's recipe (``recipe = "paper"``), and for triplet and infonce, which have no
distillation to tune, "auto" takes the field's paper value (METHOD.md's psd).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.config import AUTO, RunConfig, auto_fields, ignored_fields
from core.data import AVDataset
from core.labels import hide_labels


def auto_settings(label_rate: float) -> dict[str, Any]:
    """psd's value of every auto field for a train split whose share ``label_rate`` of pairs
    carries a label (0 < label_rate <= 1). Pure: no I/O, no config.

    Provisional rule until the few-label evidence of docs/results.md settles it: keep every
    label (r_end 1) when fewer than half of the pairs are labelled, the paper's 0.3 otherwise.
    """
    return {"schedule.r_end": 1.0 if label_rate < 0.5 else 0.3}


def paper_settings() -> dict[str, Any]:
    """The paper's value of every auto field (METHOD.md's psd, no contrastive term)."""
    return auto_fields()


def label_rate(config: RunConfig, data: AVDataset) -> float:
    """The share of ``data``'s train pairs that keep a label once ``config.data.label_fraction``
    has hidden the others: what the run's losses will see."""
    train = hide_labels(data.train, config.data.label_fraction, config.data.label_seed)
    return float(np.mean(train.labelled)) if len(train) else 0.0


def resolve(
    config: RunConfig, data: AVDataset, recorded: RunConfig | None = None
) -> tuple[RunConfig, str]:
    """``config`` with every "auto" field set, and the line that says so, e.g.
    "psd: 5.0 % of train pairs labelled -> r_end 1, contrastive weight 0.5 (auto)".

    A value the user set is kept as it is. With ``recorded`` (the config a resumed run saved),
    the auto fields take the values recorded there.
    """
    return resolve_at(config, label_rate(config, data), recorded)


def resolve_at(
    config: RunConfig, rate: float, recorded: RunConfig | None = None
) -> tuple[RunConfig, str]:
    """``resolve`` for a known label rate."""
    method = config.loss.method
    unresolved = config.unresolved()
    if recorded is not None:
        how, values = "as recorded", _values(recorded, unresolved)
    elif method != "psd":
        how, values = f"paper's, {method} has no distillation", paper_settings()
    elif config.recipe == "paper":
        how, values = "paper recipe", paper_settings()
    else:
        how, values = "auto", auto_settings(rate)
    resolved = config.replace(**{dotted: values[dotted] for dotted in unresolved})
    shown = [dotted for dotted in auto_fields() if dotted not in ignored_fields(method)]
    head = f"{method}: {100 * rate:.1f} % of train pairs labelled"
    if not shown:
        return resolved, head
    flat = _values(resolved, shown)
    kept = _values(recorded, shown) if recorded is not None else {}
    origin = {
        dotted: how if dotted in unresolved or kept.get(dotted, AUTO) == flat[dotted] else "set"
        for dotted in shown
    }
    parts = [f"{_name(dotted)} {_text(flat[dotted])}" for dotted in shown]
    if len(set(origin.values())) == 1:
        return resolved, f"{head} -> {', '.join(parts)} ({origin[shown[0]]})"
    tagged = [f"{part} ({origin[dotted]})" for part, dotted in zip(parts, shown, strict=True)]
    return resolved, f"{head} -> {', '.join(tagged)}"


def _values(config: RunConfig, dotted_names: list[str]) -> dict[str, Any]:
    flat = config.flat()
    return {dotted: flat[dotted] for dotted in dotted_names}


def _name(dotted: str) -> str:
    leaf = dotted.split(".")[-1]
    return leaf if leaf in ("r_end", "r_start") else leaf.replace("_", " ")


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


__all__ = ["AUTO", "auto_settings", "label_rate", "paper_settings", "resolve", "resolve_at"]
