"""Dataclass configs for a training run; defaults follow docs/method.md (METHOD.md's spec).

Every config is plain data (numbers, strings, booleans) so that it round-trips through a dict,
a checkpoint loaded with ``weights_only=True``, JSON and command-line flags.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, Literal

Method = Literal["psd", "triplet", "infonce"]
METHODS: tuple[str, ...] = ("psd", "triplet", "infonce")


@dataclass(frozen=True)
class ModelConfig:
    hidden: int = 512
    dim: int = 128
    dropout: float = 0.1
    activation: Literal["relu", "gelu"] = "relu"
    # g reads unit-norm embeddings, whose logits a plain linear layer keeps near zero for many
    # epochs (a near-uniform teacher); a fixed scale (NormFace-style) lets it become confident.
    logit_scale: float = 10.0
    # Standardise each input feature with the train split's mean and std (kept in the weights).
    # Pretrained-CNN and audio-net features share a large common offset; without this the
    # audio branch can start, and stay, collapsed onto one point.
    standardize: bool = True


@dataclass(frozen=True)
class LossConfig:
    method: Method = "psd"
    margin: float = 0.2
    mining: Literal["batch_hard", "semi_hard"] = "semi_hard"  # beats batch-hard: docs/results.md
    temperature: float = 1.0  # softmax temperature T of the teacher's class probabilities
    lambda_dis: float = 0.1
    # lambda_soft < 0 means "1 - r_t" (METHOD.md's default); any value >= 0 is used as a constant.
    lambda_soft: float = -1.0
    teacher: Literal["ema", "self"] = "ema"
    teacher_momentum: float = 0.99
    infonce_temperature: float = 0.07


@dataclass(frozen=True)
class ScheduleConfig:
    r_start: float = 1.0
    r_end: float = 0.3
    shape: Literal["linear", "cosine", "step"] = "linear"
    steps: int = 3  # number of plateaus for the "step" shape


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-3
    weight_decay: float = 1e-5
    batch_size: int = 128
    epochs: int = 30


@dataclass(frozen=True)
class DataConfig:
    val_fraction: float = (
        0.1  # carved from train (stratified, seeded) when the file has no val split
    )


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:1", ...
    threads: int = 0  # torch CPU threads; 0 keeps torch's default
    snapshot_every: int = 10  # steps between soft-alignment snapshots; 0 disables them

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Inverse of ``to_dict``; unknown keys are an error naming the key."""
        return _build(cls, d, prefix="")

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


def _build(cls: type, d: dict[str, Any], prefix: str) -> Any:
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


def flat_fields() -> list[tuple[str, Any, Any]]:
    """(dotted name, default, type annotation) for every leaf field: drives CLI flags and forms."""
    out: list[tuple[str, Any, Any]] = []
    for f in fields(RunConfig):
        if f.name in _SECTIONS:
            for sf in fields(_SECTIONS[f.name]):
                out.append((f"{f.name}.{sf.name}", sf.default, sf.type))
        else:
            out.append((f.name, f.default, f.type))
    return out


def method_config(method: str, base: RunConfig | None = None) -> RunConfig:
    """A config for one of the three methods, with the method's fixed choices applied.

    ``triplet`` and ``infonce`` use every label (or none) at every step, so their schedule is r = 1.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    cfg = (base or RunConfig()).replace(**{"loss.method": method})
    if method != "psd":
        cfg = cfg.replace(**{"schedule.r_start": 1.0, "schedule.r_end": 1.0})
    return cfg
