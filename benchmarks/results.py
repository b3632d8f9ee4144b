"""psd vs triplet vs infonce on generated AVE-like / VEGAS-like data, plus the r_end and schedule
ablations; writes docs/results/runs.json and regenerates docs/results.md from it.

    python -m benchmarks.results                   # everything still missing, then the report
    python -m benchmarks.results --shape ave       # only the AVE-like runs
    python -m benchmarks.results --group main      # only some experiment groups
    python -m benchmarks.results --render          # no training: rebuild docs/results.md from JSON
    python -m benchmarks.results --quick           # smoke run: 2 epochs, 1 seed, into a temp dir

Every finished run is written to the JSON at once (a crash or a stop loses at most the run in
progress) and runs already in the JSON are skipped, so the script can be rerun to continue.
Runs are keyed by their full recipe (shape, data seed, method, overrides, seed, epochs), so a run
shared by two tables (e.g. psd with the default r_end = 0.3 in the main table and the r_end
ablation) is trained once. The data is generated once per shape with a fixed data seed; the
training seed (model init, shuffling, dropout, the annotated-subset draws) varies.

The report is a pure function of the JSON: rerunning with --render gives the same file byte for
byte. Keep torch at one thread (the default here): the benchmark machine is shared.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "docs" / "results"
REPORT = ROOT / "docs" / "results.md"

DATA_SEED = 0
SEEDS = (0, 1, 2)
EPOCHS = {"ave": 30, "vegas": 15, "demo": 40, "vegas5": 5, "ave5": 30}
# Overrides under every run unless a row sets them. The benchmark was run before input
# standardisation existed (commit f2d1b0e made `model.standardize = True` the default mid-run);
# pinning it off keeps every table reproducible, and the "std" group measures the new default.
# Likewise the spec's batch-hard mining, the default when the tables were run (this benchmark
# then moved the default to semi-hard; the tables that measure it set it per row).
BASE_OVERRIDES: tuple[tuple[str, Any], ...] = (
    ("model.standardize", False),
    ("loss.mining", "batch_hard"),
)
SHAPE_NAMES = {
    "ave": "AVE-like",
    "vegas": "VEGAS-like",
    "demo": "Demo (real clips; aisfx + EfficientNet-Lite0 features)",
    "vegas5": "VEGAS-like, 5 % label noise",
    "ave5": "AVE-like, 5 % label noise",
}
# The demo is real data: the shipped features of resources/demo, not the generator.
REAL_SHAPES = ("demo",)
# The generator's shapes with 5 % of the train labels replaced instead of 25 % (same data seed,
# so the same features; only fewer labels are flipped).
LOW_NOISE = {"vegas5": "vegas", "ave5": "ave"}


def synthetic_spec(shape: str, data: tuple[tuple[str, Any], ...] = ()) -> Any:
    """The generator's spec of a shape of this benchmark (``LOW_NOISE`` included)."""
    from core.data.synthetic import SHAPES

    noise = {"label_noise": 0.05} if shape in LOW_NOISE else {}
    return replace(SHAPES[LOW_NOISE.get(shape, shape)], **noise, **dict(data))


@dataclass(frozen=True)
class Job:
    shape: str
    method: str
    overrides: tuple[tuple[str, Any], ...]  # dotted config overrides beyond method_config's
    seed: int
    epochs: int
    data: tuple[tuple[str, Any], ...] = ()  # SyntheticSpec overrides, e.g. label noise

    def spec(self) -> Any:
        return None if self.shape in REAL_SHAPES else synthetic_spec(self.shape, self.data)

    def config(self) -> Any:
        from core.training.config import RunConfig, method_config

        # The tables here are of the paper's psd (its r_end 0.3 unless a row sets another).
        base = RunConfig(device="cpu", threads=1, snapshot_every=0, recipe="paper")
        cfg = method_config(self.method, base.replace(**{"optim.epochs": self.epochs}))
        return cfg.replace(**{"seed": self.seed, **dict(BASE_OVERRIDES), **dict(self.overrides)})

    def resolved(self) -> Any:
        """The config with its "auto" fields set as the run will set them (core.training.auto),
        from the train split of the job's data when the rule needs it."""
        from core.training.auto import resolve_at, train_labels

        cfg = self.config()
        if not cfg.unresolved():
            return cfg
        if cfg.recipe == "paper" or cfg.loss.method != "psd":
            return resolve_at(cfg, 1.0)[0]  # the paper's values, whatever the label rate
        where = (self.shape, self.data, cfg.data.label_fraction, cfg.data.label_seed)
        if where not in _LABELS:  # keys are computed often: make each dataset once
            _LABELS[where] = train_labels(cfg, _dataset(self.shape, self.data))
        labels = _LABELS[where]
        return resolve_at(cfg, labels.rate, labels.per_class)[0]

    @property
    def key(self) -> str:
        """The full recipe: the resolved config (so a changed default makes new runs) and the
        generator's spec for the shape. Fields added after runs were recorded are left out while
        they hold the value under which the old code behaved the same, so old runs keep their
        keys."""
        spec = self.spec()
        cfg = self.resolved().to_dict()
        for k in ("device", "threads", "snapshot_every"):
            cfg.pop(k)
        # Once resolved, the recipe has done its work: the same values make the same run.
        cfg.pop("recipe", None)
        for dotted, neutral in _LATER_FIELDS.items():
            section, name = dotted.split(".")
            if name in cfg[section] and _neutral(cfg, dotted, neutral):
                del cfg[section][name]
        recipe = {
            "shape": self.shape,
            "data_seed": DATA_SEED,
            "data_spec": (
                {k: getattr(spec, k) for k in spec.__dataclass_fields__}
                if spec is not None
                else {"features": _demo_digest()}
            ),
            "config": cfg,
        }
        return json.dumps(recipe, sort_keys=True)


# Config fields added after the first runs, and the value each had in effect before (None: it
# has no effect when every train pair is labelled, i.e. data.label_fraction = 1).
_LATER_FIELDS: dict[str, Any] = {
    "data.label_fraction": 1.0,
    "data.label_seed": None,
    "optim.labelled_share": None,
    "loss.soft_start": 0,
    "loss.confidence": 0.0,
    "loss.contrastive_weight": 0.0,
    "loss.contrastive_soft": 0.0,
    "optim.lr_schedule": "constant",
    "optim.grad_clip": 0.0,
}


def _neutral(cfg: dict[str, Any], dotted: str, neutral: Any) -> bool:
    section, name = dotted.split(".")
    if neutral is None:
        return cfg["data"].get("label_fraction", 1.0) == 1.0
    return cfg[section][name] == neutral


@dataclass(frozen=True)
class Row:
    label: str
    method: str
    overrides: tuple[tuple[str, Any], ...] = ()
    data: tuple[tuple[str, Any], ...] = ()  # SyntheticSpec overrides
    only: tuple[str, ...] | None = None  # the shapes this row runs on (None: all the group's)


@dataclass(frozen=True)
class Group:
    name: str
    title: str
    shapes: tuple[str, ...]
    rows: tuple[Row, ...]
    seeds: dict[str, tuple[int, ...]]  # per shape: the seeds to run
    epochs: dict[str, int] | None = None  # per shape, instead of EPOCHS


def _rend_rows() -> tuple[Row, ...]:
    return tuple(
        Row(
            f"r_end = {r}"
            + (" (no distillation)" if r == 1.0 else "")
            + (" (default)" if r == 0.3 else ""),
            "psd",
            () if r == 0.3 else (("schedule.r_end", r),),
            only=None if r in (1.0, 0.3, 0.1) else ("ave",),
        )
        for r in (1.0, 0.7, 0.5, 0.3, 0.1)
    )


# The label-rate study (issue 10): the current defaults (the pins above undone), F the share of
# train pairs that keep their label. VEGAS-like gets 10 epochs: the grid must fit the machine.
LABEL_FRACTIONS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)
LABEL_GROUPS = ("labels", "labels_explore")
LABEL_EPOCHS = {"vegas": 10, "ave": 30, "demo": 40}
_CURRENT = (("model.standardize", True), ("loss.mining", "semi_hard"))
_CURRENT_DEMO = (*_CURRENT, ("optim.batch_size", 64))


def _percent(f: float) -> str:
    return f"{100 * f:g} %"


def _label_rows(extra: tuple[tuple[str, Any], ...], only: tuple[str, ...] | None) -> list[Row]:
    rows = []
    for f in LABEL_FRACTIONS:
        frac = () if f == 1.0 else (("data.label_fraction", f),)
        for method in ("psd", "triplet"):
            # psd keeps every label when some are missing (r_end = 1; "labels_explore" says why)
            few = (("schedule.r_end", 1.0),) if method == "psd" and f < 1.0 else ()
            rows.append(
                Row(f"{method}, F = {_percent(f)}", method, (*extra, *frac, *few), only=only)
            )
    # infonce uses no label, so one run per seed stands for every F.
    rows.append(Row("infonce (uses no labels)", "infonce", extra, only=only))
    return rows


def _label_groups() -> tuple[Group, ...]:
    rows = (*_label_rows(_CURRENT, ("ave", "vegas")), *_label_rows(_CURRENT_DEMO, ("demo",)))
    explore = tuple(
        Row(f"{label}, F = {_percent(f)}", method, (*_CURRENT, ("data.label_fraction", f), *ov))
        for f in (0.05, 0.1)
        for label, method, ov in (_EXPLORE if f == 0.05 else _EXPLORE[:4] + _EXPLORE_10)
    )
    return (
        Group(
            "labels",
            "Learning from few labels: test MAP against the label rate F",
            ("vegas", "ave", "demo"),
            rows,
            {"vegas": SEEDS, "ave": SEEDS, "demo": SEEDS},
            LABEL_EPOCHS,
        ),
        Group(
            "labels_explore",
            "Few labels, design exploration on VEGAS-like (seed 0)",
            ("vegas",),
            explore,
            {"vegas": (0,)},
            LABEL_EPOCHS,
        ),
    )


# One default for every label rate (issue 20): psd with no flags (its "auto" fields set from the
# train split by core.training.auto) against the paper's psd, triplet and infonce, on both
# generated shapes at 25 % and 5 % train label noise and on the demo.
RECIPE_FRACTIONS = (0.01, 0.05, 0.1, 0.25, 1.0)
RECIPE_SHAPES = ("vegas", "vegas5", "ave", "ave5", "demo")
RECIPE_GROUPS = ("recipe", "recipe_ablation", "recipe_explore")
# VEGAS-like at 5 % noise: fewer rates and 5 epochs, for the grid to fit the shared machine.
RECIPE_EPOCHS = {"vegas": 10, "vegas5": 5, "ave": 30, "ave5": 30, "demo": 40}
RECIPE_SHAPE_FRACTIONS = {"vegas5": (0.05, 1.0)}
DEFAULT = (("recipe", "default"),)


def _current(shape: str) -> tuple[tuple[str, Any], ...]:
    return _CURRENT_DEMO if shape == "demo" else _CURRENT


def _fraction(f: float) -> tuple[tuple[str, Any], ...]:
    return () if f == 1.0 else (("data.label_fraction", f),)


def _recipe_rows() -> list[Row]:
    rows = []
    for shape in RECIPE_SHAPES:
        cur, only = _current(shape), (shape,)
        for f in RECIPE_SHAPE_FRACTIONS.get(shape, RECIPE_FRACTIONS):
            frac, pc = (*cur, *_fraction(f)), _percent(f)
            rows += [
                Row(f"default, F = {pc}", "psd", (*frac, *DEFAULT), only=only),
                Row(f"paper psd, F = {pc}", "psd", frac, only=only),
                Row(f"triplet, F = {pc}", "triplet", frac, only=only),
            ]
        rows.append(Row("infonce (uses no labels)", "infonce", cur, only=only))
    return rows


# What the default is made of, one change at a time, at the label rates where each part acts.
# Each row is the default with one of its settings put back to another value (a user's flag).
RECIPE_ABLATIONS: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = (
    ("default without the contrastive term", (("loss.contrastive_weight", 0.0),)),
)
RECIPE_ABLATION_FRACTIONS = (0.01, 0.05, 0.25, 1.0)


def _recipe_ablation_rows() -> list[Row]:
    rows = []
    for shape in ("vegas", "ave", "demo"):
        for f in RECIPE_ABLATION_FRACTIONS:
            for label, ov in RECIPE_ABLATIONS:
                rows.append(
                    Row(
                        f"{label}, F = {_percent(f)}",
                        "psd",
                        (*_current(shape), *_fraction(f), *DEFAULT, *ov),
                        only=(shape,),
                    )
                )
    return rows


# Seed-0 runs that chose the default's settings (docs/results.md says what each showed): shape,
# F, what was changed from psd with r_end 1 (the few-label setting before this study).
RECIPE_EXPLORE: tuple[tuple[str, float, tuple[tuple[str, Any], ...]], ...] = (
    ("vegas", 0.01, (("schedule.r_end", 1.0),)),
    (
        "vegas",
        0.01,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 0.3), ("loss.contrastive_soft", 1.0)),
    ),
    ("vegas", 0.05, (("schedule.r_end", 1.0),)),
    ("vegas", 0.05, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 0.1))),
    ("vegas", 0.05, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 0.3))),
    ("vegas", 0.05, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0))),
    (
        "vegas",
        0.05,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 0.3), ("loss.contrastive_soft", 1.0)),
    ),
    (
        "vegas",
        0.05,
        (
            ("schedule.r_end", 1.0),
            ("loss.contrastive_weight", 0.3),
            ("loss.infonce_temperature", 0.5),
        ),
    ),
    (
        "vegas",
        0.05,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 1.0)),
    ),
    ("vegas", 0.1, (("schedule.r_end", 1.0),)),
    (
        "vegas",
        0.1,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 0.3), ("loss.contrastive_soft", 1.0)),
    ),
    (
        "vegas",
        0.1,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 1.0)),
    ),
    ("vegas", 0.25, (("schedule.r_end", 1.0),)),
    (
        "vegas",
        0.25,
        (("schedule.r_end", 0.1), ("loss.contrastive_weight", 0.3), ("loss.contrastive_soft", 1.0)),
    ),
    (
        "vegas",
        0.25,
        (("schedule.r_end", 0.3), ("loss.contrastive_weight", 0.3), ("loss.contrastive_soft", 1.0)),
    ),
    (
        "vegas",
        0.25,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 0.3), ("loss.contrastive_soft", 1.0)),
    ),
    (
        "vegas",
        0.25,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 1.0)),
    ),
    (
        "vegas",
        0.25,
        (
            ("schedule.r_end", 1.0),
            ("loss.contrastive_weight", 0.3),
            ("loss.contrastive_soft", 1.0),
            ("loss.teacher_momentum", 0.999),
        ),
    ),
    (
        "vegas",
        0.25,
        (
            ("schedule.r_end", 1.0),
            ("loss.contrastive_weight", 0.3),
            ("loss.contrastive_soft", 1.0),
            ("optim.lr", 0.0003),
        ),
    ),
    (
        "vegas",
        0.25,
        (
            ("schedule.r_end", 1.0),
            ("loss.contrastive_weight", 0.3),
            ("loss.contrastive_soft", 1.0),
            ("optim.lr_schedule", "cosine"),
        ),
    ),
    (
        "vegas",
        0.25,
        (
            ("schedule.r_end", 1.0),
            ("loss.contrastive_weight", 0.3),
            ("loss.contrastive_soft", 1.0),
            ("optim.lr_schedule", "cosine"),
            ("optim.grad_clip", 1.0),
        ),
    ),
    ("vegas", 1.0, ()),
    ("vegas", 1.0, (("loss.contrastive_weight", 0.3), ("loss.contrastive_soft", 1.0))),
    (
        "vegas",
        1.0,
        (
            ("loss.contrastive_weight", 0.3),
            ("loss.contrastive_soft", 1.0),
            ("optim.lr_schedule", "cosine"),
        ),
    ),
    (
        "vegas",
        1.0,
        (("schedule.r_end", 0.1), ("loss.contrastive_weight", 0.3), ("loss.contrastive_soft", 1.0)),
    ),
    (
        "vegas",
        1.0,
        (("schedule.r_end", 0.3), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 1.0)),
    ),
    ("ave", 0.01, (("schedule.r_end", 1.0),)),
    ("ave", 0.01, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 0.3))),
    ("ave", 0.01, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0))),
    ("ave", 0.01, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 3.0))),
    (
        "ave",
        0.01,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 1.0)),
    ),
    (
        "ave",
        0.01,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.lambda_soft", 0.0)),
    ),
    (
        "ave",
        0.01,
        (
            ("schedule.r_end", 1.0),
            ("loss.contrastive_weight", 1.0),
            ("optim.lr_schedule", "cosine"),
        ),
    ),
    (
        "ave",
        0.01,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 3.0), ("loss.contrastive_soft", 1.0)),
    ),
    ("ave", 0.05, (("schedule.r_end", 1.0),)),
    ("ave", 0.05, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 0.3))),
    ("ave", 0.05, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0))),
    (
        "ave",
        0.05,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 0.3)),
    ),
    (
        "ave",
        0.05,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 1.0)),
    ),
    ("ave", 0.1, (("schedule.r_end", 1.0),)),
    ("ave", 0.1, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0))),
    (
        "ave",
        0.1,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 0.3)),
    ),
    (
        "ave",
        0.1,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 1.0)),
    ),
    ("ave", 0.25, (("schedule.r_end", 1.0),)),
    ("ave", 0.25, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0))),
    (
        "ave",
        0.25,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 0.3)),
    ),
    (
        "ave",
        0.25,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 1.0)),
    ),
    ("ave", 1.0, ()),
    ("ave", 1.0, (("loss.teacher_momentum", 0.999),)),
    ("ave", 1.0, (("optim.grad_clip", 0.1),)),
    ("ave", 1.0, (("optim.lr_schedule", "cosine"),)),
    ("ave", 1.0, (("optim.weight_decay", 0.001),)),
    ("ave", 1.0, (("loss.contrastive_weight", 0.3), ("loss.contrastive_soft", 1.0))),
    ("ave", 1.0, (("optim.lr", 0.0003), ("optim.lr_schedule", "cosine"))),
    ("demo", 0.01, (("schedule.r_end", 1.0),)),
    ("demo", 0.01, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 0.3))),
    ("demo", 0.01, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0))),
    ("demo", 0.01, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 3.0))),
    (
        "demo",
        0.01,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 0.1)),
    ),
    (
        "demo",
        0.01,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 0.3)),
    ),
    (
        "demo",
        0.01,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 1.0)),
    ),
    (
        "demo",
        0.01,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.lambda_soft", 0.0)),
    ),
    (
        "demo",
        0.01,
        (
            ("schedule.r_end", 1.0),
            ("loss.contrastive_weight", 1.0),
            ("optim.lr_schedule", "cosine"),
        ),
    ),
    (
        "demo",
        0.01,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 3.0), ("loss.contrastive_soft", 1.0)),
    ),
    ("demo", 0.05, (("schedule.r_end", 1.0),)),
    ("demo", 0.05, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 0.3))),
    ("demo", 0.05, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0))),
    ("demo", 0.05, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 3.0))),
    (
        "demo",
        0.05,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 1.0)),
    ),
    (
        "demo",
        0.05,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.lambda_soft", 0.0)),
    ),
    (
        "demo",
        0.05,
        (
            ("schedule.r_end", 1.0),
            ("loss.contrastive_weight", 1.0),
            ("optim.lr_schedule", "cosine"),
        ),
    ),
    (
        "demo",
        0.05,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 3.0), ("loss.contrastive_soft", 1.0)),
    ),
    ("demo", 0.1, (("schedule.r_end", 1.0),)),
    ("demo", 0.1, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 0.3))),
    ("demo", 0.1, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0))),
    ("demo", 0.1, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 2.0))),
    ("demo", 0.1, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 3.0))),
    (
        "demo",
        0.1,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 0.1)),
    ),
    (
        "demo",
        0.1,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 0.3)),
    ),
    (
        "demo",
        0.1,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 1.0)),
    ),
    (
        "demo",
        0.1,
        (
            ("schedule.r_end", 1.0),
            ("loss.contrastive_weight", 1.0),
            ("optim.lr_schedule", "cosine"),
        ),
    ),
    (
        "demo",
        0.1,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 3.0), ("loss.contrastive_soft", 1.0)),
    ),
    ("demo", 0.25, (("schedule.r_end", 1.0),)),
    ("demo", 0.25, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 0.3))),
    ("demo", 0.25, (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0))),
    (
        "demo",
        0.25,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 0.3)),
    ),
    (
        "demo",
        0.25,
        (("schedule.r_end", 1.0), ("loss.contrastive_weight", 1.0), ("loss.contrastive_soft", 1.0)),
    ),
    ("demo", 1.0, ()),
    ("demo", 1.0, (("loss.contrastive_weight", 0.3), ("loss.contrastive_soft", 1.0))),
)


def _explore_label(f: float, ov: tuple[tuple[str, Any], ...]) -> str:
    names = {
        "schedule.r_end": "r_end",
        "loss.contrastive_weight": "w",
        "loss.contrastive_soft": "beta",
        "optim.lr_schedule": "lr",
        "optim.grad_clip": "clip",
        "optim.lr": "lr",
        "loss.teacher_momentum": "EMA",
        "loss.lambda_soft": "lambda_soft",
        "loss.infonce_temperature": "tau",
        "optim.weight_decay": "weight decay",
    }
    if not ov:
        return f"F = {_percent(f)}: the paper's psd"
    return f"F = {_percent(f)}: " + ", ".join(
        f"{names.get(k, k)} {v:g}" if isinstance(v, float) else f"{names.get(k, k)} {v}"
        for k, v in ov
    )


def _recipe_groups() -> tuple[Group, ...]:
    seeds = dict.fromkeys(RECIPE_SHAPES, SEEDS)
    explore = tuple(
        Row(
            _explore_label(f, ov),
            "psd",
            (*_current(shape), *_fraction(f), *ov),
            only=(shape,),
        )
        for shape, f, ov in RECIPE_EXPLORE
    )
    return (
        Group(
            "recipe",
            "One default for every label rate",
            RECIPE_SHAPES,
            tuple(_recipe_rows()),
            seeds,
            RECIPE_EPOCHS,
        ),
        Group(
            "recipe_ablation",
            "The default, one part at a time",
            ("vegas", "ave", "demo"),
            tuple(_recipe_ablation_rows()),
            seeds,
            RECIPE_EPOCHS,
        ),
        Group(
            "recipe_explore",
            "Choosing the default: what was tried (seed 0)",
            ("vegas", "ave", "demo"),
            explore,
            dict.fromkeys(RECIPE_SHAPES, (0,)),
            RECIPE_EPOCHS,
        ),
    )


# What was tried at 5 % labels before the grid (the first four also at 10 %). r_end = 1 (every
# label used) won at 5 % on a first look, so the other teacher knobs are tried on top of it.
_R1 = (("schedule.r_end", 1.0),)
_EXPLORE: tuple[tuple[str, str, tuple[tuple[str, Any], ...]], ...] = (
    ("triplet", "triplet", ()),
    ("psd, r_end = 0.3 (the full-label default)", "psd", ()),
    ("psd, r_end = 1: every label used, U = the unlabelled pairs", "psd", _R1),
    (
        "psd, r_end = 1, lambda_soft = 0: no distillation (labelled losses + l_dis on all pairs)",
        "psd",
        (*_R1, ("loss.lambda_soft", 0.0)),
    ),
    ("psd, r_end = 1, l_soft from epoch 3 (soft_start 2)", "psd", (*_R1, ("loss.soft_start", 2))),
    ("psd, r_end = 1, confidence >= 0.7", "psd", (*_R1, ("loss.confidence", 0.7))),
    ("psd, r_end = 1, labelled share 0.5", "psd", (*_R1, ("optim.labelled_share", 0.5))),
    ("psd, r_end = 1, teacher momentum 0.999", "psd", (*_R1, ("loss.teacher_momentum", 0.999))),
    ("psd, r_end = 1, teacher temperature 0.5", "psd", (*_R1, ("loss.temperature", 0.5))),
    ("psd, r_end = 1, teacher temperature 2", "psd", (*_R1, ("loss.temperature", 2.0))),
)
# At 10 % psd scored below its 5 % score: is it the one labelled subset (label seed 0) that the
# grid's training seeds all share?
_EXPLORE_10: tuple[tuple[str, str, tuple[tuple[str, Any], ...]], ...] = (
    ("psd, r_end = 1, labelled subset of label seed 1", "psd", (*_R1, ("data.label_seed", 1))),
)


# Current defaults on the demo: undo the pins above; batch 64 gives 6 steps/epoch on 390 pairs.
_DEMO = (("model.standardize", True), ("loss.mining", "semi_hard"), ("optim.batch_size", 64))

GROUPS: tuple[Group, ...] = (
    Group(
        "demo",
        "The built-in demo: real clips (current defaults, batch 64)",
        ("demo",),
        (
            Row("psd", "psd", _DEMO),
            Row("psd, r_end = 1.0 (no distillation)", "psd", (*_DEMO, ("schedule.r_end", 1.0))),
            Row("triplet", "triplet", _DEMO),
            Row("infonce", "infonce", _DEMO),
        ),
        {"demo": SEEDS},
    ),
    Group(
        "main",
        "Main comparison (spec defaults: batch-hard mining, inputs not standardised)",
        ("ave", "vegas"),
        (Row("psd", "psd"), Row("triplet", "triplet"), Row("infonce", "infonce")),
        {"ave": SEEDS, "vegas": SEEDS},
    ),
    Group(
        "rend",
        "Ablation: r_end (psd, linear schedule)",
        ("ave", "vegas"),
        _rend_rows(),
        {"ave": SEEDS, "vegas": SEEDS},
    ),
    Group(
        "shape",
        "Ablation: schedule shape (psd, r_end = 0.3)",
        ("ave",),
        (
            Row("linear (default)", "psd"),
            Row("cosine", "psd", (("schedule.shape", "cosine"),)),
            Row("step (3 plateaus)", "psd", (("schedule.shape", "step"),)),
        ),
        {"ave": SEEDS},
    ),
    Group(
        "invest",
        "Investigation: which part of psd does the work (AVE-like)",
        ("ave",),
        (
            Row("triplet (l_lab + l_cross)", "triplet"),
            Row(
                "psd, r_end = 1: triplet + 0.1 l_dis, no distillation",
                "psd",
                (("schedule.r_end", 1.0),),
            ),
            Row("psd, lambda_dis = 0: distillation, no l_dis", "psd", (("loss.lambda_dis", 0.0),)),
            Row("psd (default: r_end 0.3, T 1, lambda_dis 0.1, EMA 0.99)", "psd"),
            Row("psd, lambda_dis = 0.3", "psd", (("loss.lambda_dis", 0.3),)),
            Row("psd, lambda_dis = 1.0", "psd", (("loss.lambda_dis", 1.0),)),
            Row("psd, T = 2 (softer teacher)", "psd", (("loss.temperature", 2.0),)),
            Row("psd, T = 0.5 (sharper teacher)", "psd", (("loss.temperature", 0.5),)),
            Row("psd, teacher momentum 0.999", "psd", (("loss.teacher_momentum", 0.999),)),
            Row("psd, teacher = self", "psd", (("loss.teacher", "self"),)),
            Row("psd, semi-hard mining", "psd", (("loss.mining", "semi_hard"),)),
            Row("triplet, semi-hard mining", "triplet", (("loss.mining", "semi_hard"),)),
            Row(
                "psd, r fixed at 0.5 from the first epoch",
                "psd",
                (("schedule.r_start", 0.5), ("schedule.r_end", 0.5)),
            ),
            Row(
                "psd, r fixed at 0.5, lambda_dis = 0: distillation alone, from the start",
                "psd",
                (("schedule.r_start", 0.5), ("schedule.r_end", 0.5), ("loss.lambda_dis", 0.0)),
            ),
        ),
        {"ave": SEEDS},
    ),
    Group(
        "noise",
        "Investigation: clean training labels (AVE-like, data regenerated with the same seed)",
        ("ave",),
        tuple(
            Row(
                f"{name}, label noise {q}" + (" (default data)" if q == 0.25 else ""),
                m,
                ov,
                () if q == 0.25 else (("label_noise", q),),
            )
            for q in (0.0, 0.25)
            for name, m, ov in (
                ("psd", "psd", ()),
                ("psd r_end = 1 (no distillation)", "psd", (("schedule.r_end", 1.0),)),
                ("triplet", "triplet", ()),
            )
        ),
        {"ave": SEEDS},
    ),
    Group(
        "std",
        "Check: the new default `model.standardize = True` (input standardisation, f2d1b0e)",
        ("ave", "vegas"),
        (
            Row("psd", "psd", (("model.standardize", True),)),
            Row("triplet", "triplet", (("model.standardize", True),)),
            Row("infonce", "infonce", (("model.standardize", True),), only=("ave",)),
            Row(
                "psd, r_end = 1.0 (no distillation)",
                "psd",
                (("model.standardize", True), ("schedule.r_end", 1.0)),
                only=("vegas",),
            ),
            Row(
                "psd, r_end = 0.1",
                "psd",
                (("model.standardize", True), ("schedule.r_end", 0.1)),
                only=("vegas",),
            ),
        ),
        {"ave": SEEDS, "vegas": (0,)},
    ),
    Group(
        "check",
        "Check on VEGAS-like: semi-hard mining, a fairer triplet baseline",
        ("vegas",),
        (
            Row("triplet, batch-hard (default)", "triplet"),
            Row("triplet, semi-hard mining", "triplet", (("loss.mining", "semi_hard"),)),
            Row("psd (default)", "psd"),
            Row("psd, semi-hard mining", "psd", (("loss.mining", "semi_hard"),)),
        ),
        {"vegas": SEEDS},
    ),
    Group(
        "rend_semi",
        "Check on VEGAS-like: r_end with semi-hard mining (the new default; one seed)",
        ("vegas",),
        tuple(
            Row(
                f"psd, semi-hard, r_end = {r}",
                "psd",
                (("loss.mining", "semi_hard"),) + ((("schedule.r_end", r),) if r != 0.3 else ()),
            )
            for r in (1.0, 0.3, 0.1)
        ),
        {"vegas": (0,)},
    ),
    *_label_groups(),
    *_recipe_groups(),
)


_DATASETS: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}
_LABELS: dict[tuple[Any, ...], Any] = {}


def _dataset(shape: str, data: tuple[tuple[str, Any], ...]) -> Any:
    """The job's dataset, made once per process (one at a time: the VEGAS shape is large)."""
    key = (shape, data)
    if key not in _DATASETS:
        from core.data.demo import load_demo
        from core.data.synthetic import make_dataset

        _DATASETS.clear()
        _DATASETS[key] = (
            load_demo()
            if shape in REAL_SHAPES
            else make_dataset(synthetic_spec(shape, data), DATA_SEED)
        )
    return _DATASETS[key]


def _demo_digest() -> str:
    """The shipped demo features' content hash: re-extracted features make new runs."""
    import hashlib

    from core.data.demo import demo_features_path

    return hashlib.blake2b(demo_features_path().read_bytes(), digest_size=8).hexdigest()


def jobs_of(group: Group, shape: str, row: Row, epochs: dict[str, int]) -> list[Job]:
    if row.only is not None and shape not in row.only:
        return []
    n = group_epochs(group, shape, epochs)
    return [
        Job(shape, row.method, row.overrides, seed, n, row.data)
        for seed in group.seeds.get(shape, ())
    ]


def group_epochs(group: Group, shape: str, epochs: dict[str, int]) -> int:
    """The group's epoch budget on ``shape``; ``--quick`` caps every group at its budget."""
    return min(epochs[shape], (group.epochs or {}).get(shape, epochs[shape]))


# ---------------------------------------------------------------------------------------------
# Running


def run_job(job: Job, data: Any, clean: Any = None) -> dict[str, Any]:
    """Train one run (best-on-val checkpoint into a temp dir) and return its record.

    ``clean``: the generator's train labels before label noise, to score pseudo-labels against
    the truth as well as against the (noisy) labels that were hidden."""
    import torch

    from core.training.checkpoint import load_checkpoint
    from core.training.events import EpochEnd, PseudoLabels, RunFinished, RunStarted
    from core.training.loop import evaluate, train

    cfg = job.config()
    seconds: list[float] = []
    pseudo: list[float | None] = []
    pseudo_clean: list[float] = []
    n_labelled = -1
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="avx-bench-") as tmp:
        for ev in train(cfg, data, out_dir=tmp):
            if isinstance(ev, RunStarted):
                n_labelled = ev.n_labelled
            elif isinstance(ev, PseudoLabels) and clean is not None:
                hit = ev.predicted == clean[ev.indices]
                pseudo_clean.append(round(float(hit.mean()), 4))
            elif isinstance(ev, EpochEnd):
                seconds.append(ev.seconds)
                pseudo.append(None if ev.pseudo_accuracy is None else round(ev.pseudo_accuracy, 4))
                print(
                    f"    epoch {ev.epoch}/{job.epochs}: val avg {ev.val.avg:.4f} r {ev.r:.2f}"
                    f" {ev.seconds:.1f}s"
                    + ("" if ev.pseudo_accuracy is None else f" pseudo {ev.pseudo_accuracy:.3f}")
                    + (" *" if ev.best else ""),
                    file=sys.stderr,
                    flush=True,
                )
            elif isinstance(ev, RunFinished):
                finished = ev
        # The final epoch's model on test: how much a run without model selection would lose.
        last = load_checkpoint(Path(tmp) / "last.pt").build_model(torch.device("cpu"))
        last_test = evaluate(last, data.test, torch.device("cpu"))
    return {
        "shape": job.shape,
        "data_seed": DATA_SEED,
        "method": job.method,
        "overrides": dict(job.overrides),
        "data": dict(job.data),
        "seed": job.seed,
        "epochs": job.epochs,
        "best_epoch": finished.best_epoch,
        "val": _scores(finished.best_val),
        "test": _scores(finished.test),
        "last_test": _scores(last_test),
        "val_curve": [round(h["val"]["avg"], 4) for h in finished.history],
        **({"pseudo_curve": pseudo} if any(p is not None for p in pseudo) else {}),
        **({"pseudo_clean_curve": pseudo_clean} if pseudo_clean else {}),
        **({"n_labelled": n_labelled} if cfg.data.label_fraction < 1 else {}),
        "sec_per_epoch": round(sum(seconds) / len(seconds), 3),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def _scores(s: Any) -> dict[str, float]:
    return {"a2v": round(s.a2v, 5), "v2a": round(s.v2a, 5), "avg": round(s.avg, 5)}


def load_runs(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    return {"meta": {}, "runs": {}}


def save_runs(path: Path, db: dict[str, Any], merge: bool = False) -> None:
    """Write ``db``; with ``merge``, keep the runs that another process wrote to the file
    meanwhile (two processes may fill one JSON side by side, e.g. ``--method psd`` and
    ``--method triplet``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if merge and path.exists():
        db["runs"] = {**json.loads(path.read_text()).get("runs", {}), **db["runs"]}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(db, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def run_all(args: argparse.Namespace, json_path: Path) -> dict[str, Any]:
    import torch

    from core.data.synthetic import make_dataset

    torch.set_num_threads(1)
    db = load_runs(json_path)
    db["meta"].update(
        {
            "data_seed": DATA_SEED,
            "threads": 1,
            "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(),
            "note": "2-core machine shared with other jobs: seconds per epoch are contended",
        }
    )
    todo: list[Job] = []
    for group in GROUPS:
        if args.group and group.name not in args.group:
            continue
        for shape in group.shapes:
            if args.shape and shape not in args.shape:
                continue
            for row in group.rows:
                for job in jobs_of(group, shape, row, args.epochs):
                    if args.seeds is not None and job.seed not in args.seeds:
                        continue
                    if args.method and job.method not in args.method:
                        continue
                    if args.row and not any(row.label.startswith(x) for x in args.row):
                        continue
                    fraction = dict(job.overrides).get("data.label_fraction", 1.0)
                    if args.fractions is not None and fraction not in args.fractions:
                        continue
                    if job.key not in db["runs"] and job not in todo:
                        todo.append(job)
    print(f"{len(todo)} runs to do", file=sys.stderr)
    datasets: dict[str, Any] = {}
    for i, job in enumerate(todo, 1):
        data_key = (job.shape, job.data)
        if data_key not in datasets:
            datasets.clear()  # one dataset in memory at a time
            datasets[data_key] = _dataset(job.shape, job.data)
            if job.shape not in REAL_SHAPES:  # the same features, drawn before the label flips
                clean_spec = replace(job.spec(), label_noise=0.0)
                datasets["clean"] = make_dataset(clean_spec, DATA_SEED).train.labels
        print(
            f"[{i}/{len(todo)}] {job.shape} {job.method} seed {job.seed} {dict(job.overrides)} "
            f"{dict(job.data)}",
            file=sys.stderr,
            flush=True,
        )
        record = run_job(job, datasets[data_key], datasets.get("clean"))
        db["runs"][job.key] = record
        save_runs(json_path, db, merge=True)
        t = record["test"]
        print(
            f"  test avg {t['avg']:.4f} (a2v {t['a2v']:.4f} v2a {t['v2a']:.4f}), best epoch "
            f"{record['best_epoch']}, {record['sec_per_epoch']:.2f} s/epoch",
            file=sys.stderr,
            flush=True,
        )
    return db


def diagnose(out_path: Path, seed: int = 0) -> dict[str, Any]:
    """How good are the teacher's labels? One psd run (defaults) and one triplet run on AVE-like;
    after each epoch, the argmax of the EMA teacher's (psd) or the model's own (triplet) class
    probabilities on the *train* pairs, compared with the clean labels (which the generator
    knows) and with the noisy ones the run was trained on, over the mislabelled pairs."""

    import numpy as np
    import torch

    from core.data.synthetic import SHAPES, make_dataset
    from core.training.auto import paper_settings
    from core.training.config import RunConfig, method_config
    from core.training.loop import batch_slices, epoch_order, evaluate
    from core.training.model import AVEmbedder
    from core.training.objective import Objective
    from core.training.schedules import ratio_schedule
    from core.training.teacher import make_teacher

    torch.set_num_threads(1)
    data = make_dataset("ave", DATA_SEED)
    # Same seed and spec without noise: the train features are drawn before the label flips,
    # so they are identical and only the labels differ.
    clean = make_dataset(replace(SHAPES["ave"], label_noise=0.0), DATA_SEED).train
    assert np.array_equal(clean.audio, data.train.audio)
    y_clean = torch.as_tensor(clean.labels)
    y_noisy = torch.as_tensor(data.train.labels)
    flipped = y_clean != y_noisy
    result: dict[str, Any] = {
        "seed": seed,
        "n_train": len(y_noisy),
        "n_flipped": int(flipped.sum()),
        "runs": {},
    }
    for method in ("psd", "triplet"):
        base = RunConfig(device="cpu", threads=1, snapshot_every=0, seed=seed, recipe="paper")
        # This loop runs the steps itself, so it sets the paper's values of the auto fields.
        base = base.replace(**paper_settings(), **dict(BASE_OVERRIDES))
        cfg = method_config(method, base)
        torch.manual_seed(seed)
        model = AVEmbedder(data.audio_dim, data.visual_dim, data.num_classes, cfg.model)
        opt = torch.optim.Adam(
            model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay
        )
        teacher = make_teacher("ema", model, cfg.loss.teacher_momentum) if method == "psd" else None
        objective = Objective(cfg.loss)
        gen = torch.Generator().manual_seed(seed)
        ratios = ratio_schedule(cfg.schedule, cfg.optim.epochs)
        audio = torch.as_tensor(data.train.audio)
        visual = torch.as_tensor(data.train.visual)
        slices = batch_slices(len(y_noisy), cfg.optim.batch_size)
        rows = []
        for epoch in range(cfg.optim.epochs):
            model.train()
            order = epoch_order(seed, epoch, len(y_noisy))
            for sl in slices:
                idx = order[sl]
                out = objective(
                    model, teacher, audio[idx], visual[idx], y_noisy[idx], float(ratios[epoch]), gen
                )
                opt.zero_grad(set_to_none=True)
                out.total.backward()
                opt.step()
                if teacher is not None:
                    teacher.update()
            judge = teacher.model if teacher is not None else model
            with torch.no_grad():
                judge.eval()
                pa = judge.classify(judge.embed_audio(audio)).argmax(1)
                pv = judge.classify(judge.embed_visual(visual)).argmax(1)
            model.train()
            pred = torch.cat([pa, pv])
            yc, yn, fl = (torch.cat([t, t]) for t in (y_clean, y_noisy, flipped))
            rows.append(
                {
                    "epoch": epoch + 1,
                    "r": round(float(ratios[epoch]), 3),
                    "acc_clean_all": round(float((pred == yc).float().mean()), 4),
                    "flipped_pred_clean": round(float((pred[fl] == yc[fl]).float().mean()), 4),
                    "flipped_pred_noisy": round(float((pred[fl] == yn[fl]).float().mean()), 4),
                    "val_avg": round(evaluate(model, data.val, torch.device("cpu")).avg, 4),
                }
            )
            print(method, rows[-1], file=sys.stderr, flush=True)
        result["runs"][method] = rows
    save_runs(out_path, result)
    return result


def diagnosis_table(diag: dict[str, Any]) -> list[str]:
    lines = [
        f"Train pairs: {diag['n_train']}, of which {diag['n_flipped']} carry a wrong label. "
        f"Predictions of both modalities are pooled (seed {diag['seed']}).",
        "",
        "| epoch | r (psd) | psd teacher: acc. vs clean | on mislabelled: = clean "
        "| on mislabelled: = noisy | triplet model: acc. vs clean | = clean | = noisy |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    psd, tri = diag["runs"]["psd"], diag["runs"]["triplet"]
    for p, t in zip(psd, tri, strict=True):
        if p["epoch"] in (1, 2, 3, 5, 10, 15, 20, 25, 30):
            lines.append(
                f"| {p['epoch']} | {p['r']:.2f} | {100 * p['acc_clean_all']:.1f} "
                f"| {100 * p['flipped_pred_clean']:.1f} | {100 * p['flipped_pred_noisy']:.1f} "
                f"| {100 * t['acc_clean_all']:.1f} | {100 * t['flipped_pred_clean']:.1f} "
                f"| {100 * t['flipped_pred_noisy']:.1f} |"
            )
    return lines


# ---------------------------------------------------------------------------------------------
# Report


def _stats(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd


def _pm(xs: list[float]) -> str:
    m, sd = _stats(xs)
    return f"{100 * m:.2f} ± {100 * sd:.2f}"


def row_runs(
    db: dict[str, Any], group: Group, shape: str, row: Row, epochs: dict[str, int]
) -> list[dict[str, Any]]:
    return [db["runs"][j.key] for j in jobs_of(group, shape, row, epochs) if j.key in db["runs"]]


def table(db: dict[str, Any], group: Group, shape: str, epochs: dict[str, int]) -> list[str]:
    lines = [
        "| setting | seeds | test A2V | test V2A | test avg | val avg (selected) "
        "| test avg, last epoch | best epoch | s/epoch |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    any_row = False
    for row in group.rows:
        runs = row_runs(db, group, shape, row, epochs)
        if not runs:
            continue
        any_row = True

        def get(part: str, k: str, runs: list[dict[str, Any]] = runs) -> list[float]:
            return [r[part][k] for r in runs]

        best = ", ".join(str(r["best_epoch"]) for r in runs)
        spe = _stats([r["sec_per_epoch"] for r in runs])[0]
        lines.append(
            f"| {row.label} | {len(runs)} | {_pm(get('test', 'a2v'))} | {_pm(get('test', 'v2a'))} "
            f"| **{_pm(get('test', 'avg'))}** | {_pm(get('val', 'avg'))} "
            f"| {_pm(get('last_test', 'avg'))} | {best} "
            f"| {spe:.2f} |"
        )
    return lines if any_row else []


def mean_avg(
    db: dict[str, Any], group: str, shape: str, label: str, epochs: dict[str, int]
) -> float | None:
    g = next(g for g in GROUPS if g.name == group)
    row = next(r for r in g.rows if r.label == label)
    runs = row_runs(db, g, shape, row, epochs)
    return _stats([r["test"]["avg"] for r in runs])[0] if runs else None


def recipe_section(db: dict[str, Any], epochs: dict[str, int], plot_path: Path | None) -> list[str]:
    from benchmarks.recipe import section

    return section(db, epochs, plot_path)


def label_section(db: dict[str, Any], epochs: dict[str, int], plot_path: Path | None) -> list[str]:
    from benchmarks.label_rate import section

    return section(db, epochs, plot_path)


def render(
    db: dict[str, Any],
    epochs: dict[str, int],
    diag: dict[str, Any] | None,
    plot_path: Path | None = None,
) -> str:
    """The report; ``plot_path``: where to draw the label-rate plot (None: no plot)."""
    meta = db.get("meta", {})
    out = [
        "# Results",
        "",
        "<!-- Generated by `python -m benchmarks.results --render` from docs/results/runs.json; "
        "edit the script, not this file. -->",
        "",
        *recipe_section(db, epochs, plot_path),
        *label_section(db, epochs, None),
        "## The full-label benchmark",
        "",
        PREAMBLE.format(
            ave_epochs=epochs["ave"],
            vegas_epochs=epochs["vegas"],
            data_seed=DATA_SEED,
            torch=meta.get("torch", "?"),
        ).strip(),
        "",
    ]
    for group in GROUPS:
        if group.name in LABEL_GROUPS + RECIPE_GROUPS:  # rendered by their sections, first
            continue
        blocks = []
        for shape in group.shapes:
            lines = table(db, group, shape, epochs)
            if lines:
                n = group_epochs(group, shape, epochs)
                blocks += [f"**{SHAPE_NAMES[shape]}** ({n} epochs)", "", *lines, ""]
        if blocks:
            out += [f"## {group.title}", "", *blocks]
    out += [DATA.strip(), ""]
    if diag:
        out += [
            "## Investigation: how good are the teacher's labels? (AVE-like)",
            "",
            DIAG_INTRO.strip(),
            "",
            *diagnosis_table(diag),
            "",
        ]
    out += [findings(db, epochs, diag), ""]
    diffs = headline_deltas(db, epochs)
    if diffs:
        out += ["## Computed deltas (test avg MAP, points, mean over 3 seeds)", "", *diffs, ""]
    from benchmarks.locate import section  # its own run and JSON (docs/results/locate.json)

    out += section()
    return "\n".join(out)


def headline_deltas(db: dict[str, Any], epochs: dict[str, int]) -> list[str]:
    out = []
    for shape in ("ave", "vegas"):
        psd = mean_avg(db, "main", shape, "psd", epochs)
        for other in ("triplet", "infonce"):
            o = mean_avg(db, "main", shape, other, epochs)
            if psd is not None and o is not None:
                out.append(f"- {SHAPE_NAMES[shape]}: psd − {other} = {100 * (psd - o):+.2f}")
        r1 = mean_avg(db, "rend", shape, "r_end = 1.0 (no distillation)", epochs)
        if psd is not None and r1 is not None and shape == "ave":  # VEGAS-like: one seed only
            out.append(
                f"- {SHAPE_NAMES[shape]}: psd (r_end 0.3) − psd without distillation (r_end 1.0)"
                f" = {100 * (psd - r1):+.2f}"
            )
    return out


PREAMBLE = """
Setup. Data from `core.data.synthetic.make_dataset(shape, seed={data_seed})` in the lineage layout
(one fixed data seed; train labels noisy, val and test clean; see "The generated data" below). Each
setting is trained with training seeds 0, 1, 2 (model init, shuffling, dropout and the draws of
the annotated subsets); the data does not change between seeds. Every method uses the same
trainer, the same data, the same epoch budget ({ave_epochs} epochs on AVE-like, {vegas_epochs} on
VEGAS-like, where one psd epoch costs ~10 s here), batch 128, Adam 1e-3, batch-hard mining
unless a row says otherwise, inputs not standardised unless a row says so, and the same model
selection: the epoch with the best val average MAP is evaluated on test. Numbers are MAP x 100,
mean ± sample standard deviation over the seeds ("seeds" says how many). "test avg, last epoch"
is the final epoch's model on test (what a run without model selection would report; it shows
how stable long runs are); "best epoch" lists the selected epoch (1-based) of each seed.
Seconds per epoch include the val evaluation and were measured with torch {torch}, 1 thread,
on a 2-core machine shared with other jobs, so they are noisy and pessimistic. The runs predate
the speed work of 2026-11-25 (docs/benchmarks.md; a psd epoch at the VEGAS shape, 9.5 s then,
takes 2.6-3.8 s now). l_soft now adds its terms in another order (equal to 1e-7), so a psd rerun
drifts from these numbers over the epochs; the sorted semi-hard miner and the teacher thread give
the same values as before.

Regenerate: `python -m benchmarks.results` (runs what is missing, then rewrites this file);
`python -m benchmarks.results --render` only rewrites this file from `docs/results/runs.json`.
"""

DATA = """
## The generated data

`core/data/synthetic.py`, unchanged by this benchmark. AVE-like: 15 classes, 1,367 / 195 / 393
train / val / test pairs (1,955); VEGAS-like: 10 classes, 20,234 / 2,248 / 5,621 (28,103); 128-d
audio and 1,024-d non-negative visual features, as VGGish / pooled Inception. Every clip has a
32-d latent code near one of 3 sub-modes of its class; audio and visual are two different random
two-layer networks of that code plus their own noise, so neither modality is a copy of the other.
Web-label flaws, in the train split only (val and test are clean, so MAP measures retrieval):

- 25 % of train labels are wrong, 70 % of those swapped to the class's "confusable neighbour"
  (a class whose prototype was pulled 40 % of the way towards it), 30 % to a random class;
- 15 % of pairs have one modality that carries nothing of the class (off-screen sound, a black
  frame), i.e. the pair contradicts its own label.

Is that realistic? AVE's and VEGAS's labels are human-verified and cleaner than 25 %; the level
is meant for the web-video setting the paper targets, and it is where the spec says the gain
should appear. The noise-free control below regenerates the same features with clean labels.
The resulting difficulty (see the tables) was not calibrated against the real features: absolute
numbers here say nothing about AVE or VEGAS themselves, only the differences between methods do.
"""

DIAG_INTRO = """
`python -m benchmarks.results --diagnose` retrains psd (defaults) and triplet, seed 0, and after
every epoch takes the argmax class of the psd EMA teacher (for triplet: of the model's own head,
which sees the same hard labels) on every train pair, then compares it with the clean label the
generator knows and with the noisy label the run was given. "= clean" on the mislabelled pairs is
the teacher correcting the label; "= noisy" is the teacher having memorised the wrong one.
"""


def findings(db: dict[str, Any], epochs: dict[str, int], diag: dict[str, Any] | None) -> str:
    """The prose, with every number read from the JSON (so a rerun updates it); the sentences
    were written for the committed runs."""

    def v(group: str, shape: str, label: str, part: str = "test") -> float | None:
        g = next(g for g in GROUPS if g.name == group)
        row = next(r for r in g.rows if r.label == label)
        runs = row_runs(db, g, shape, row, epochs)
        return 100 * _stats([r[part]["avg"] for r in runs])[0] if runs else None

    def f(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.1f}"

    def d(x: float | None, y: float | None) -> str:
        return "n/a" if x is None or y is None else f"{x - y:+.1f}"

    psd, tri, inf = (v("main", "ave", m) for m in ("psd", "triplet", "infonce"))
    vpsd, vtri, vinf = (v("main", "vegas", m) for m in ("psd", "triplet", "infonce"))
    inv = "psd, r_end = 1: triplet + 0.1 l_dis, no distillation"
    r1, nodis = (
        v("invest", "ave", inv),
        v("invest", "ave", "psd, lambda_dis = 0: distillation, no l_dis"),
    )
    rend = {
        r: v("rend", "ave", lab)
        for r, lab in zip(
            (1.0, 0.7, 0.5, 0.3, 0.1),
            (
                "r_end = 1.0 (no distillation)",
                "r_end = 0.7",
                "r_end = 0.5",
                "r_end = 0.3 (default)",
                "r_end = 0.1",
            ),
            strict=True,
        )
    }
    rend_last = {
        r: v("rend", "ave", lab, "last_test")
        for r, lab in zip((1.0, 0.1), ("r_end = 1.0 (no distillation)", "r_end = 0.1"), strict=True)
    }
    tv = [
        v("invest", "ave", lab)
        for lab in (
            "psd, T = 2 (softer teacher)",
            "psd, T = 0.5 (sharper teacher)",
            "psd, teacher momentum 0.999",
            "psd, teacher = self",
        )
    ]
    tv_known = [x for x in tv if x is not None]
    tv_range = f"{f(min(tv_known))}-{f(max(tv_known))}" if tv_known else "n/a"
    l03, l1 = (
        v("invest", "ave", "psd, lambda_dis = 0.3"),
        v("invest", "ave", "psd, lambda_dis = 1.0"),
    )
    psd_semi = v("invest", "ave", "psd, semi-hard mining")
    psd_semi_val = v("invest", "ave", "psd, semi-hard mining", "val")
    tri_semi_val = v("invest", "ave", "triplet, semi-hard mining", "val")
    psd_val, tri_val = (v("main", "ave", m, "val") for m in ("psd", "triplet"))
    tri_semi = v("invest", "ave", "triplet, semi-hard mining")
    fix = v("invest", "ave", "psd, r fixed at 0.5 from the first epoch")
    fix0 = v(
        "invest", "ave", "psd, r fixed at 0.5, lambda_dis = 0: distillation alone, from the start"
    )
    fix0_val = v(
        "invest",
        "ave",
        "psd, r fixed at 0.5, lambda_dis = 0: distillation alone, from the start",
        "val",
    )
    c_psd = v("noise", "ave", "psd, label noise 0.0")
    c_r1 = v("noise", "ave", "psd r_end = 1 (no distillation), label noise 0.0")
    c_tri = v("noise", "ave", "triplet, label noise 0.0")
    vr0 = {}  # seed 0 only, comparable with the one-seed VEGAS rows
    for r, lab in zip(
        (1.0, 0.3, 0.1),
        ("r_end = 1.0 (no distillation)", "r_end = 0.3 (default)", "r_end = 0.1"),
        strict=True,
    ):
        g = next(g for g in GROUPS if g.name == "rend")
        row = next(x for x in g.rows if x.label == lab)
        key = Job("vegas", row.method, row.overrides, 0, epochs["vegas"], row.data).key
        vr0[r] = 100 * db["runs"][key]["test"]["avg"] if key in db["runs"] else None
    rs = {str(r): v("rend_semi", "vegas", f"psd, semi-hard, r_end = {r}") for r in (1.0, 0.3, 0.1)}
    rs_last = {
        str(r): v("rend_semi", "vegas", f"psd, semi-hard, r_end = {r}", "last_test")
        for r in (1.0, 0.3, 0.1)
    }
    ck_last = {
        lab: v("check", "vegas", lab, "last_test")
        for lab in ("triplet, semi-hard mining", "psd, semi-hard mining")
    }
    psd_semi_last = v("invest", "ave", "psd, semi-hard mining", "last_test")
    tri_semi_last = v("invest", "ave", "triplet, semi-hard mining", "last_test")
    ck = {
        lab: v("check", "vegas", lab)
        for lab in (
            "triplet, batch-hard (default)",
            "triplet, semi-hard mining",
            "psd (default)",
            "psd, semi-hard mining",
        )
    }
    st = {lab: v("std", "ave", lab) for lab in ("psd", "triplet", "infonce")}
    sv = {
        lab: v("std", "vegas", lab)
        for lab in ("psd", "triplet", "psd, r_end = 1.0 (no distillation)", "psd, r_end = 0.1")
    }
    tri_curves = [
        r["val_curve"] for r in row_runs(db, GROUPS[0], "vegas", GROUPS[0].rows[1], epochs)
    ]
    psd_curves = [
        r["val_curve"][2:] for r in row_runs(db, GROUPS[0], "vegas", GROUPS[0].rows[0], epochs)
    ]
    psd_range = (
        f"{f(100 * min(min(c) for c in psd_curves))}-{f(100 * max(max(c) for c in psd_curves))}"
        if psd_curves
        else "n/a"
    )
    tri_lo = min((min(c) for c in tri_curves), default=None)
    tri_hi = max((max(c) for c in tri_curves), default=None)
    dg = ""
    if diag:
        rows = {r["epoch"]: r for r in diag["runs"]["psd"]}
        trows = {r["epoch"]: r for r in diag["runs"]["triplet"]}
        full = next((e for e in sorted(rows) if rows[e]["flipped_pred_noisy"] >= 0.99), None)
        tfull = next((e for e in sorted(trows) if trows[e]["flipped_pred_noisy"] >= 0.99), None)
        dg = (
            f"The teacher diagnosis above says why. Early on the EMA teacher would correct "
            f"labels: at epochs 3-5 it puts {100 * rows[3]['flipped_pred_clean']:.0f}-"
            f"{100 * rows[5]['flipped_pred_clean']:.0f} % of the mislabelled train pairs in "
            f"their true class. But r_t is still {rows[5]['r']:.2f}-{rows[3]['r']:.2f} then, so "
            f"almost nothing is distilled. By epoch 15 (r = {rows[15]['r']:.2f}) it gives the "
            f"wrong label for {100 * rows[15]['flipped_pred_noisy']:.0f} % of them, and from "
            f"epoch {full} on for all of them: its accuracy against the clean labels settles at "
            f"{100 * rows[30]['acc_clean_all']:.1f} %, exactly the share of correct labels. Once "
            f"distillation gets going, the soft labels just repeat the noisy ones. Because A is "
            f"redrawn every batch, every pair's hard label is still shown in a fraction r_t of "
            f"its batches, so nothing stops the memorisation (the triplet model's own head "
            f"memorises completely by epoch {tfull})."
        )
    text = f"""
## Findings

**Does psd win?** Against the baselines as the spec configures them (batch-hard mining), yes,
and by more than the paper's margins. Test average MAP (x 100, mean of 3 seeds): AVE-like psd
{f(psd)} vs triplet {f(tri)} ({d(psd, tri)} points) and infonce {f(inf)}; VEGAS-like psd
{f(vpsd)} vs triplet {f(vtri)} ({d(vpsd, vtri)}) and infonce {f(vinf)}. But that margin
measures a weak baseline, not distillation. Batch-hard mining on noisy labels is what fails.
With semi-hard mining for both methods, triplet reaches {f(tri_semi)} on AVE-like and
{f(ck["triplet, semi-hard mining"])} on VEGAS-like, and psd {f(psd_semi)} and
{f(ck["psd, semi-hard mining"])}: {d(psd_semi, tri_semi)} and
{d(ck["psd, semi-hard mining"], ck["triplet, semi-hard mining"])} points, a tie within half a
point. The paper reports +2.13 (AVE) and +1.82 (VEGAS) over the previous best on the real
features. We do not reproduce a gain of that kind here, in the like-for-like comparison, on
generated data. Where psd keeps a clear edge is the stability of long runs: its final-epoch
model loses less than triplet's (semi-hard, last epoch: AVE-like psd {f(psd_semi_last)} vs
triplet {f(tri_semi_last)}; VEGAS-like {f(ck_last["psd, semi-hard mining"])} vs
{f(ck_last["triplet, semi-hard mining"])}). That matters for a user who trains without a val
split, but model selection on val hides it.

**Where the AVE-like gain comes from.**

- Without distillation (r_end = 1, which leaves triplet + 0.1 l_dis) psd scores {f(r1)}, no
  worse than the default psd ({f(psd)}). With distillation but without l_dis
  (lambda_dis = 0) it scores {f(nodis)}, the same as triplet ({f(tri)}). So the whole psd-triplet
  gap here is the pair term l_dis. Distillation adds {d(psd, r1)} points, within
  the seed noise.
- The r_end ablation is flat for the selected models: {", ".join(f(rend[r]) for r in rend)} for
  r_end = 1.0 ... 0.1. Model selection picks epoch 3 or 4 on most seeds, when
  r_t >= 0.93 and U holds at most 9 of 128 pairs. For the same reason T, the teacher momentum
  and teacher = self change nothing ({tv_range}),
  nor does the schedule shape. The "last epoch" column shows what distillation does later:
  {f(rend_last[1.0])} at r_end = 1.0 against {f(rend_last[0.1])} at r_end = 0.1. Here it makes
  long runs worse, not better.
- {dg}
- Distillation from the first epoch (r fixed at 0.5) scores {f(fix)} with l_dis, against
  {f(r1)} without distillation. Without l_dis it scores {f(fix0)}, against triplet's {f(tri)}:
  {d(fix0, tri)} on test but {d(fix0_val, tri_val)} on val. So it has at most a small effect,
  even when given the whole run.
- What helps on AVE-like is not distillation. A larger lambda_dis helps (0.3: {f(l03)},
  1.0: {f(l1)}), and so does semi-hard mining for either method (triplet {f(tri_semi)},
  psd {f(psd_semi)}). Batch-hard mining on noisy labels picks a mislabelled pair as the hardest
  positive or negative most of the time. With semi-hard mining, psd's lead over triplet shrinks
  to {d(psd_semi, tri_semi)}.
- With clean training labels the three settings tie within a point (psd {f(c_psd)}, psd without
  distillation {f(c_r1)}, triplet {f(c_tri)}), as the spec expects on small clean data. The 25 %
  label noise costs about 19 points, and it is what separates the methods.

**VEGAS-like.** Batch-hard triplet is unstable here: its val MAP jumps between
{f(None if tri_lo is None else 100 * tri_lo)} and {f(None if tri_hi is None else 100 * tri_hi)}
from epoch to epoch (`val_curve` in the JSON), while psd stays within {psd_range} after its
second epoch. With a batch of 128 and 10 classes, each anchor has about 13 positives by its
label, about 3 of them really of another class, and batch-hard picks exactly those. Semi-hard
mining lifts triplet from {f(ck["triplet, batch-hard (default)"])} to
{f(ck["triplet, semi-hard mining"])}, and psd from {f(ck["psd (default)"])} to
{f(ck["psd, semi-hard mining"])} (3 seeds each). Under batch-hard mining, distillation seems to
matter here, unlike on AVE-like. The selected epochs are 5-8 (r_t 0.65-0.80), and one VEGAS
epoch is 159 steps, so the 0.99 EMA teacher has caught up within the epoch. r_end = 1.0 / 0.3 /
0.1 give {f(vr0[1.0])} / {f(vr0[0.3])} / {f(vr0[0.1])} (seed 0; with standardised inputs
{f(sv["psd, r_end = 1.0 (no distillation)"])} / {f(sv["psd"])} / {f(sv["psd, r_end = 0.1"])}).
With semi-hard mining that gain disappears for the selected models: r_end = 1.0 / 0.3 / 0.1
give {f(rs["1.0"])} / {f(rs["0.3"])} / {f(rs["0.1"])}. So under batch-hard, a lower r_end
helped mainly because fewer pairs went through batch-hard mining. What is left is stability: the
final-epoch models score {f(rs_last["1.0"])} / {f(rs_last["0.3"])} / {f(rs_last["0.1"])}. All of
this is one seed: a lead, not a result.

**Input standardisation** (the new default, measured after the other tables):
AVE-like psd {f(st["psd"])} / triplet {f(st["triplet"])} / infonce {f(st["infonce"])}
(3 seeds), VEGAS-like psd {f(sv["psd"])} / triplet {f(sv["triplet"])} (seed 0). Compare
{f(psd)} / {f(tri)} / {f(inf)} and {f(vr0[0.3])} / {f(ck["triplet, batch-hard (default)"])}
without it.

**Defaults.** One changed: `loss.mining` goes from `batch_hard` to `semi_hard` in
`core/training/config.py`, for triplet and psd alike. On AVE-like (3 seeds) test moves
{d(tri_semi, tri)} for triplet and {d(psd_semi, psd)} for psd, and val moves
{d(tri_semi_val, tri_val)} and {d(psd_semi_val, psd_val)}. On VEGAS-like (3 seeds) test moves
{d(ck["triplet, semi-hard mining"], ck["triplet, batch-hard (default)"])} for triplet and
{d(ck["psd, semi-hard mining"], ck["psd (default)"])} for psd. Every other table was run with
the spec's batch-hard mining, which the script pins (`BASE_OVERRIDES`), so those tables stay
reproducible. Not changed, though the numbers point that way:

- `loss.lambda_dis` 0.3-1.0 for psd, tried only with batch-hard. It would widen psd's lead
  through a term that is not distillation and that triplet could use just as well. A fair
  comparison would give triplet l_dis too ("triplet + l_dis" is psd with r_end = 1).
- `model.standardize = True`, the lead's new default, is roughly neutral to negative on this data
  (see its table). That is no argument against it on real features, where it was measured.

**Caveats.** The data are generated, with one data seed. Val is small (195 pairs on AVE-like),
so selection is noisy: triplet's final epoch beats its selected one on AVE-like. VEGAS-like runs
last 15 epochs (not 30) because of compute, and its ablations use one seed. The seconds per
epoch were measured on a contended machine, so they vary by a factor of 2 between identical
runs.
"""
    return text.strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.results",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: AVE-like, 2 epochs, seed 0, main group, into a temp dir",
    )
    p.add_argument(
        "--shape", action="append", choices=sorted(EPOCHS), help="only this shape (repeatable)"
    )
    p.add_argument(
        "--group",
        action="append",
        choices=[g.name for g in GROUPS],
        help="only this experiment group (repeatable)",
    )
    p.add_argument(
        "--seeds",
        type=lambda s: [int(x) for x in s.split(",")],
        help="only these training seeds, e.g. 0,1",
    )
    p.add_argument(
        "--method", action="append", choices=("psd", "triplet", "infonce"), help="only this method"
    )
    p.add_argument(
        "--fractions",
        type=lambda s: [float(x) for x in s.split(",")],
        help="only runs at these label fractions F, e.g. 0.05,0.1 (1.0: every label)",
    )
    p.add_argument(
        "--row", action="append", help="only rows whose label starts with this (repeatable)"
    )
    p.add_argument("--render", action="store_true", help="no training; rewrite the report")
    p.add_argument(
        "--diagnose",
        action="store_true",
        help="only the teacher-quality diagnosis (two AVE-like runs), then the report",
    )
    p.add_argument("--out", type=Path, help="results directory (default docs/results)")
    args = p.parse_args(argv)
    args.epochs = dict(EPOCHS)
    out_dir, report = args.out or RESULTS_DIR, REPORT if args.out is None else None
    if args.quick:
        args.epochs = dict.fromkeys(EPOCHS, 2)
        args.shape, args.group, args.seeds = args.shape or ["ave"], ["main"], [0]
        if args.out is None:
            out_dir, report = Path(tempfile.mkdtemp(prefix="avx-quick-")), None
    json_path = out_dir / "runs.json"
    diag_path = out_dir / "teacher_diagnosis.json"
    if args.diagnose:
        diagnose(diag_path)
    db = load_runs(json_path) if args.render or args.diagnose else run_all(args, json_path)
    diag = json.loads(diag_path.read_text()) if diag_path.exists() else None
    text = render(db, args.epochs, diag, REPORT.parent / "label_rate.png" if report else None)
    if report is not None:
        report.write_text(text)
        print(
            f"wrote {report.relative_to(ROOT)} from {json_path.relative_to(ROOT)}", file=sys.stderr
        )
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "results.md").write_text(text)
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
