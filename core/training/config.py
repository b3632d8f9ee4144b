"""Dataclass configs for a training run; defaults follow docs/method.md (METHOD.md's spec).

Every config is plain data (numbers, strings, booleans) so that it round-trips through a dict,
a checkpoint loaded with ``weights_only=True``, JSON and command-line flags.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from core.errors import UserError

Method = Literal["psd", "triplet", "infonce"]
METHODS: tuple[str, ...] = ("psd", "triplet", "infonce")
# "auto": the value is set from the data when a run starts (core.training.auto)
AUTO = "auto"
Auto = Literal["auto"]
Recipe = Literal["default", "paper"]
RECIPES: tuple[str, ...] = ("default", "paper")
# Upper limits of sizes and counts: far past any useful value, so that only a typo is refused
# (e.g. 10^12 epochs would fail allocating the schedule, after the run folder was written).
MAX_EPOCHS = 100_000
MAX_WIDTH = 16_384  # hidden and embedding widths
MAX_BATCH = 16_384
MIN_INFONCE_TEMPERATURE = 0.01


class ConfigError(UserError, ValueError):
    """A config value out of its range or of the wrong type; ``field`` is its dotted name."""

    def __init__(self, name: str, problem: str) -> None:
        self.field = name
        self.problem = problem
        super().__init__(f"{name}: {problem}")


def bounded(
    default: Any,
    lo: float | None = None,
    hi: float | Callable[[], float] | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> Any:
    """A config field with a range, checked when the config is built (``hi`` may be a function,
    for limits of this machine such as its CPU count)."""
    return field(default=default, metadata={"range": (lo, hi, lo_open, hi_open)})


def auto_field(
    paper: Any,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> Any:
    """A field that may be ``"auto"``, and is by default: a run sets it from its train split
    (``core.training.auto.resolve``) and records the value it used. Declaring a field this way
    (annotated ``<type> | Literal["auto"]``) is all it takes to make it auto-able; the rule that
    picks its value is ``core.training.auto.auto_settings``.

    ``paper`` is its value in the paper's recipe (METHOD.md), which is also what a config saved
    before the field existed meant. A concrete value is checked against the range as ``bounded``.
    """
    return field(
        default=AUTO,
        metadata={"range": (lo, hi, lo_open, hi_open), "paper": paper, "saved_default": paper},
    )


class _Validated:
    """Every config section checks its fields when built, so that no code path (CLI flags, the
    app's form, a checkpoint, a JSON file) can make a config that a run would choke on.

    Types come from the annotations (``Literal`` choices included; numbers must be finite, ints
    must not be bools or floats, floats accept ints), ranges from ``bounded``. A section may add
    cross-field checks in a ``_check`` method.
    """

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if "paper" in f.metadata and isinstance(value, str) and value == AUTO:
                continue  # resolved when a run starts
            hint = _without_auto(hints[f.name])
            checked = _check_value(_qualified(type(self), f.name), value, hint)
            if checked is not value:
                object.__setattr__(self, f.name, checked)
            if "range" in f.metadata:
                _check_range(_qualified(type(self), f.name), checked, *f.metadata["range"])
        self._check()

    def _check(self) -> None:
        """Checks that involve several fields of the section (none by default)."""


@dataclass(frozen=True)
class ModelConfig(_Validated):
    hidden: int = bounded(512, 1, MAX_WIDTH)
    dim: int = bounded(128, 1, MAX_WIDTH)
    dropout: float = bounded(0.1, 0.0, 1.0, hi_open=True)
    activation: Literal["relu", "gelu"] = "relu"
    # g reads unit-norm embeddings, whose logits a plain linear layer keeps near zero for many
    # epochs (a near-uniform teacher); a fixed scale (NormFace-style) lets it become confident.
    logit_scale: float = bounded(10.0, 0.0, lo_open=True)
    # Standardise each input feature with the train split's mean and std (kept in the weights).
    # Pretrained-CNN and audio-net features share a large common offset; without this the
    # audio branch can start, and stay, collapsed onto one point.
    standardize: bool = True


@dataclass(frozen=True)
class LossConfig(_Validated):
    method: Method = "psd"
    margin: float = bounded(0.2, 0.0)
    mining: Literal["batch_hard", "semi_hard"] = "semi_hard"  # beats batch-hard: docs/results.md
    # softmax temperature T of the teacher's class probabilities
    temperature: float = bounded(1.0, 0.0, lo_open=True)
    lambda_dis: float = bounded(0.1, 0.0)
    # lambda_soft < 0 means "1 - r_t" (METHOD.md's default); any value >= 0 is used as a constant.
    lambda_soft: float = -1.0
    teacher: Literal["ema", "self"] = "ema"
    teacher_momentum: float = bounded(0.99, 0.0, 1.0)
    # Below 0.01 the logits (cosines / T) reach the hundreds: the loss runs to 1e29 or overflows
    # while the run seems to train (CLIP clamps its learned temperature at the same 0.01).
    infonce_temperature: float = bounded(0.07, MIN_INFONCE_TEMPERATURE)
    # psd with unlabelled pairs (docs/method.md, "Few labels"): l_soft is off for the first
    # soft_start epochs (the teacher first learns from the labelled pairs), and a teacher soft
    # label whose pair confidence is below `confidence` is left out of S (0 keeps every one).
    soft_start: int = bounded(0, 0, MAX_EPOCHS)
    confidence: float = bounded(0.0, 0.0, 1.0)
    # psd: weight of a cross-modal InfoNCE over every pair of the batch, labelled or not, at
    # temperature infonce_temperature (docs/method.md, "The contrastive term"); 0: the paper's psd.
    contrastive_weight: float | Literal["auto"] = auto_field(paper=0.0, lo=0.0)
    # Its positives: each clip's own partner (CLIP) with weight 1 and, with weight
    # contrastive_soft * S_ij, the clips the labels or the teacher put in its class, which are then
    # no longer pushed away as negatives. 0: the partner alone.
    contrastive_soft: float | Literal["auto"] = auto_field(paper=0.0, lo=0.0, hi=1.0)


@dataclass(frozen=True)
class ScheduleConfig(_Validated):
    # r is the share of a batch's labels used; 0 would use none (r in (0, 1], METHOD.md)
    r_start: float = bounded(1.0, 0.0, 1.0, lo_open=True)
    # auto: from the train split's label rate (core.training.auto); the paper's value is 0.3
    r_end: float | Literal["auto"] = auto_field(paper=0.3, lo=0.0, hi=1.0, lo_open=True)
    shape: Literal["linear", "cosine", "step"] = "linear"
    steps: int = bounded(3, 1, MAX_EPOCHS)  # number of plateaus for the "step" shape


@dataclass(frozen=True)
class OptimConfig(_Validated):
    lr: float = bounded(1e-3, 0.0, lo_open=True)
    weight_decay: float = bounded(1e-5, 0.0)
    # a triplet needs two pairs; a batch's pair matrices are batch_size^2 floats
    batch_size: int = bounded(128, 2, MAX_BATCH)
    epochs: int = bounded(30, 1, MAX_EPOCHS)
    # When some train pairs are unlabelled, psd's batches hold at least this share of labelled
    # pairs, re-sampled from the labelled pool (docs/method.md, "Batches when labels are scarce").
    labelled_share: float = bounded(0.25, 0.0, 1.0, lo_open=True)
    # "cosine" decays the learning rate from lr to 0 over the run's steps (half a cosine).
    lr_schedule: Literal["constant", "cosine"] | Literal["auto"] = auto_field(paper="constant")
    # Largest global gradient norm before the step (torch's clip_grad_norm_); 0 leaves it alone.
    grad_clip: float | Literal["auto"] = auto_field(paper=0.0, lo=0.0)


@dataclass(frozen=True)
class DataConfig(_Validated):
    # carved from train (stratified, seeded) when the file has no val split
    val_fraction: float = bounded(0.1, 0.0, 1.0, lo_open=True, hi_open=True)
    # Simulate a low label rate: keep the labels of this fraction of the train pairs (stratified
    # per class, at least one per class, drawn with label_seed) and hide the others.
    label_fraction: float = bounded(1.0, 0.0, 1.0, lo_open=True)
    label_seed: int = bounded(0, 0, 2**32 - 1)
    # Train features past this many MB are read from the file in chunks as training goes
    # instead of loaded whole (core/data/stream.py), when the file was opened with its train
    # split left on disk (the CLI's train does so). "auto": the measured default (docs/scaling.md);
    # "0" always streams. The batches, and so the results, are the same either way.
    stream_above_mb: str = AUTO

    def _check(self) -> None:
        if self.stream_above_mb == AUTO:
            return
        try:
            mb = float(self.stream_above_mb)
        except ValueError:
            mb = math.nan
        if not (math.isfinite(mb) and mb >= 0):
            raise ConfigError(
                "data.stream_above_mb", f"{self.stream_above_mb!r} is neither auto nor a size in MB"
            )


@dataclass(frozen=True)
class RunConfig(_Validated):
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    # How "auto" fields are set: "default" from the train split's label rate, "paper" to the
    # paper's values (METHOD.md's psd); a config saved before recipes existed was the paper's.
    recipe: Recipe = field(default="default", metadata={"saved_default": "paper"})
    seed: int = bounded(0, 0, 2**32 - 1)
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:1", ...
    # torch CPU threads; 0 keeps torch's default
    threads: int = bounded(0, 0, lambda: os.cpu_count() or 1)
    # steps between soft-alignment snapshots; 0: none
    snapshot_every: int = bounded(10, 0, 2**31 - 1)

    def _check(self) -> None:
        if not _DEVICE.fullmatch(self.device):
            raise ConfigError(
                "device", f"{self.device!r} is not a device; use auto, cpu, cuda or cuda:N"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Inverse of ``to_dict``; unknown keys are an error naming the key."""
        return _build(cls, d, prefix="")

    @classmethod
    def from_saved(cls, d: dict[str, Any]) -> RunConfig:
        """A config a run saved (checkpoint, config.json, run.json). A field it lacks did not
        exist when it was saved, so the run trained as the field's ``saved_default`` says (an
        auto field's paper value: what the code did before) rather than as today's default."""
        d = copy.deepcopy(d)
        for dotted, value in _saved_defaults().items():
            node = d
            *parents, leaf = dotted.split(".")
            for p in parents:
                node = node.setdefault(p, {}) if isinstance(node, dict) else node
            if isinstance(node, dict):
                node.setdefault(leaf, value)
        return cls.from_dict(d)

    def flat(self) -> dict[str, Any]:
        """Every leaf field by dotted name, e.g. ``{"loss.margin": 0.2, ...}`` (what ``replace``
        and the app's form take)."""
        return _flatten(self.to_dict())

    def unresolved(self) -> list[str]:
        """Dotted names of the fields still "auto" (a run resolves them when it starts)."""
        flat = self.flat()
        return [dotted for dotted in auto_fields() if flat[dotted] == AUTO]

    def replace(self, **overrides: Any) -> RunConfig:
        """Return a copy with dotted overrides applied, e.g. ``{"loss.margin": 0.3, "seed": 2}``."""
        d = self.to_dict()
        for key, value in overrides.items():
            node = d
            *parents, leaf = key.split(".")
            for p in parents:
                if p not in node or not isinstance(node[p], dict):
                    raise KeyError(f"unknown config section {key!r}")
                node = node[p]
            if leaf not in node:
                raise KeyError(f"unknown config field {key!r}")
            node[leaf] = value
        return RunConfig.from_dict(d)


_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _hints(cls: type) -> dict[str, Any]:
    cached = _HINTS.get(cls)
    if cached is None:
        cached = _HINTS[cls] = typing.get_type_hints(cls)
    return cached


_HINTS: dict[type, dict[str, Any]] = {}


def _qualified(cls: type, name: str) -> str:
    section = next((k for k, v in _SECTIONS.items() if v is cls), None)
    return f"{section}.{name}" if section else name


def _without_auto(hint: Any) -> Any:
    """The annotation of an auto field without its ``| Auto`` (``float | Auto`` -> ``float``)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(hint) if a != Auto]
        if len(rest) == 1:
            return rest[0]
    return hint


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _check_value(name: str, value: Any, hint: Any) -> Any:
    """``value`` checked against the annotation ``hint``, ints widened to float for floats."""
    if typing.get_origin(hint) is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(name, f"{value!r} is not one of {', '.join(map(str, choices))}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(name, f"expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(name, f"expected a whole number, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(name, f"expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(name, f"must be a finite number, got {value}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(name, f"expected text, got {value!r}")
        return value
    if isinstance(hint, type) and issubclass(hint, _Validated) and not isinstance(value, hint):
        raise ConfigError(name, f"expected a {hint.__name__}, got {value!r}")
    return value


def _check_range(name: str, value: float, lo: Any, hi: Any, lo_open: bool, hi_open: bool) -> None:
    hi = hi() if callable(hi) else hi
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ConfigError(name, f"must be {'>' if lo_open else '>='} {_num(lo)}, got {_num(value)}")
    if hi is not None and (value > hi or (hi_open and value == hi)):
        raise ConfigError(name, f"must be {'<' if hi_open else '<='} {_num(hi)}, got {_num(value)}")


def _num(x: float) -> str:
    """A limit or value as a person wrote it: whole numbers in full (4294967295, not 4.29e+09)."""
    return str(x) if isinstance(x, int) and abs(x) < 10**15 else f"{x:g}"


def _build(cls: type, d: dict[str, Any], prefix: str) -> Any:
    if not isinstance(d, dict):
        raise ConfigError(prefix.rstrip(".") or "config", f"expected a section, got {d!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise KeyError(f"unknown config field '{prefix}{unknown[0]}'")
    kwargs = {}
    for name, value in d.items():
        sub = _SECTIONS.get(name) if cls is RunConfig else None
        kwargs[name] = _build(sub, value, f"{name}.") if sub else value
    return cls(**kwargs)


_SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "loss": LossConfig,
    "schedule": ScheduleConfig,
    "optim": OptimConfig,
    "data": DataConfig,
}


def _leaf_fields() -> list[tuple[str, Any]]:
    """(dotted name, dataclass field) of every leaf field, in declaration order."""
    out: list[tuple[str, Any]] = []
    for f in fields(RunConfig):
        if f.name in _SECTIONS:
            out.extend((f"{f.name}.{sf.name}", sf) for sf in fields(_SECTIONS[f.name]))
        else:
            out.append((f.name, f))
    return out


def flat_fields() -> list[tuple[str, Any, Any]]:
    """(dotted name, default, type annotation) for every leaf field: drives CLI flags and forms.
    An auto field's default is "auto"; ``auto_fields`` gives the type of its concrete values."""
    return [(dotted, f.default, f.type) for dotted, f in _leaf_fields()]


def auto_fields() -> dict[str, Any]:
    """Dotted name -> paper value of every field that may be "auto" (declared with
    ``auto_field``); the paper value's type is the type of the field's concrete values."""
    return {dotted: f.metadata["paper"] for dotted, f in _leaf_fields() if "paper" in f.metadata}


def field_range(dotted: str) -> tuple[float | None, float | None]:
    """The (low, high) limits of a ``bounded`` or ``auto_field`` field (None: no limit)."""
    for name, f in _leaf_fields():
        if name == dotted:
            lo, hi, *_ = f.metadata.get("range", (None, None))
            return lo, hi() if callable(hi) else hi
    raise KeyError(f"unknown config field {dotted!r}")


def field_open_ends(dotted: str) -> tuple[bool, bool]:
    """Whether the (low, high) limits of ``field_range`` are themselves excluded."""
    for name, f in _leaf_fields():
        if name == dotted:
            _, _, lo_open, hi_open = f.metadata.get("range", (None, None, False, False))
            return lo_open, hi_open
    raise KeyError(f"unknown config field {dotted!r}")


def _saved_defaults() -> dict[str, Any]:
    return {
        dotted: f.metadata["saved_default"]
        for dotted, f in _leaf_fields()
        if "saved_default" in f.metadata
    }


# Fields a method never reads (the app disables their editors). Only psd has a teacher, a
# schedule of r and the soft and distillation terms; infonce has no margin, miner or classifier.
_PSD_ONLY = frozenset(
    {
        "schedule.r_start",
        "schedule.r_end",
        "schedule.shape",
        "schedule.steps",
        "loss.temperature",
        "loss.lambda_dis",
        "loss.lambda_soft",
        "loss.teacher",
        "loss.teacher_momentum",
        "recipe",  # the baselines' auto fields always take the paper's values
        "loss.contrastive_weight",
        "loss.contrastive_soft",
    }
)
_IGNORED: dict[str, frozenset[str]] = {
    # psd reads infonce_temperature for its contrastive term (loss.contrastive_weight)
    "psd": frozenset(),
    "triplet": _PSD_ONLY | {"loss.infonce_temperature"},
    "infonce": _PSD_ONLY | {"loss.margin", "loss.mining", "model.logit_scale"},
}


def ignored_fields(method: str) -> frozenset[str]:
    """Dotted names of the config fields ``method`` does not use."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return _IGNORED[method]


def method_config(method: str, base: RunConfig | None = None) -> RunConfig:
    """A config for one of the three methods, with the method's fixed choices applied.

    ``triplet`` and ``infonce`` use every label (or none) at every step, so their schedule is r = 1.
    """
    if method not in METHODS:
        raise ConfigError(
            "loss.method", f"unknown method {method!r}; choose one of {', '.join(METHODS)}"
        )
    cfg = (base or RunConfig()).replace(**{"loss.method": method})
    if method != "psd":
        cfg = cfg.replace(**{"schedule.r_start": 1.0, "schedule.r_end": 1.0})
    return cfg
