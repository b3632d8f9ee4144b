"""The grid of docs/results.md: the data shapes, seeds and epochs, each experiment group's
rows, and the jobs (one training run each) they expand to. Imported by the runner
(``benchmarks.result_runs``), the report (``benchmarks.results``) and its sections."""

from __future__ import annotations

import json
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
    # how a file is read, not what is learnt from it
    "data.stream_above_mb": "auto",
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
