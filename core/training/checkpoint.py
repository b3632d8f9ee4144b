"""Checkpoints: weights, optimiser, teacher, full config, dims, label names and run position.

Everything is stored as tensors and plain Python values, so that ``torch.load(weights_only=True)``
reads it without unpickling arbitrary code. Writes are atomic: a temp file, then a rename.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from core.atomic import atomic_write
from core.errors import UserError
from core.training.config import RunConfig
from core.training.events import numbered_history
from core.training.model import AVEmbedder

FORMAT = "avexplorer-checkpoint"
VERSION = (
    2  # 2: the run record numbers epochs from 1 (core/training/events.py), as everything shown
)


@dataclass
class Checkpoint:
    config: RunConfig
    class_names: list[str]
    audio_dim: int
    visual_dim: int
    model: dict[str, torch.Tensor]
    attrs: dict[str, str] = field(default_factory=dict)  # e.g. the encoders behind the features
    epoch: int = 0  # epochs done: the weights are those "after epoch <epoch>" (numbered from 1)
    step: int = 0  # steps of the next epoch done (> 0 after a mid-epoch stop)
    optimizer: dict[str, Any] | None = None
    teacher: dict[str, torch.Tensor] | None = None
    rng: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)  # best score, history, epoch accumulators
    data_source: str = ""
    data_fingerprint: str = ""  # AVDataset.fingerprint of the data trained on ("" if unknown)
    path: str = ""  # the file it was loaded from (not stored), for messages

    def build_model(self, device: torch.device | str = "cpu") -> AVEmbedder:
        model = AVEmbedder(
            self.audio_dim, self.visual_dim, len(self.class_names), self.config.model
        )
        try:
            model.load_state_dict(self.model)
        except RuntimeError as e:  # missing, unexpected or misshapen weights
            raise UserError(
                f"{self.path or 'the checkpoint'}: its weights do not fit its own model "
                f"({_first_line(e)})"
            ) from None
        return model.to(device).eval()


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": ckpt.config.to_dict(),
        "class_names": list(ckpt.class_names),
        "audio_dim": int(ckpt.audio_dim),
        "visual_dim": int(ckpt.visual_dim),
        "model": ckpt.model,
        "attrs": dict(ckpt.attrs),
        "epoch": int(ckpt.epoch),
        "step": int(ckpt.step),
        "optimizer": ckpt.optimizer,
        "teacher": ckpt.teacher,
        "rng": ckpt.rng,
        "run": ckpt.run,
        "data_source": ckpt.data_source,
        "data_fingerprint": ckpt.data_fingerprint,
    }
    with atomic_write(path) as f:  # a reader sees the old file or the new one, never half of one
        torch.save(payload, f)
    return path


def _this_machine(config: Any) -> Any:
    """The stored config with its thread count capped at this machine's CPUs: a machine setting,
    not part of the run, so a checkpoint made on a bigger machine still loads here."""
    if isinstance(config, dict) and isinstance(config.get("threads"), int):
        config = {**config, "threads": min(config["threads"], os.cpu_count() or 1)}
    return config


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # not plain tensors and values; never retried unsafely
        raise UserError(
            f"{path}: not a readable avexplorer checkpoint (not a torch file of tensors and "
            "plain values; avexplorer never loads objects that could run code)"
        ) from None
    except Exception as e:  # torch raises several types for corrupt or foreign files
        raise UserError(
            f"{path}: not a readable avexplorer checkpoint ({type(e).__name__}: "
            f"{_first_line(e)[:200]})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path}: not an avexplorer checkpoint (no '{FORMAT}' marker)")
    version = payload.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise UserError(f"{path}: a damaged or foreign checkpoint (version is not a number)")
    if version > VERSION:
        raise UserError(
            f"{path}: written by a newer avexplorer (format {payload['version']}); "
            "upgrade avexplorer to read it"
        )
    problem = _payload_problem(payload)
    if problem:
        raise UserError(f"{path}: a damaged or foreign checkpoint ({problem})")
    try:
        config = RunConfig.from_saved(_this_machine(payload["config"]))
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{path}: its config is not understood ({_first_line(e)})") from None
    return Checkpoint(
        config=config,
        class_names=list(payload["class_names"]),
        audio_dim=payload["audio_dim"],
        visual_dim=payload["visual_dim"],
        model=payload["model"],
        attrs=payload.get("attrs", {}),
        epoch=payload.get("epoch", 0),
        step=payload.get("step", 0),
        optimizer=payload.get("optimizer"),
        teacher=payload.get("teacher"),
        rng=payload.get("rng", {}),
        run=_numbered_run(payload.get("run", {}), payload.get("version", 0)),
        data_source=payload.get("data_source", ""),
        data_fingerprint=payload.get("data_fingerprint", ""),
        path=str(path),
    )


def resume_point(out_dir: str | Path) -> tuple[Path, RunConfig]:
    """The checkpoint a stopped run in ``out_dir`` continues from (its ``last.pt``, written at
    every epoch's end and at a stop) and the config it recorded: what ``train --resume`` and the
    app's Resume both hand to ``core.training.loop.train(..., resume_from=...)``."""
    path = Path(out_dir) / "last.pt"
    if not path.exists():
        raise UserError(f"nothing to resume: {path} does not exist")
    return path, load_checkpoint(path).config


def _payload_problem(payload: dict[str, Any]) -> str | None:
    """What is wrong with a loaded checkpoint's fields, or None: checked before anything uses
    them, so a damaged file is one clear error rather than a failure deep inside."""
    for key in ("config", "class_names", "audio_dim", "visual_dim", "model"):
        if key not in payload:
            return f"no {key!r}"
    names = payload["class_names"]
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        return "class_names is not a list of names"
    if not names:
        return "class_names is empty"
    for key in ("audio_dim", "visual_dim", "epoch", "step"):
        value = payload.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"{key} is not a whole number >= 0"
    for key in ("model", "teacher"):
        if key == "teacher" and payload.get(key) is None:
            continue
        problem = _weights_problem(key, payload[key])
        if problem:
            return problem
    optimizer = payload.get("optimizer")
    if optimizer is not None and not isinstance(optimizer, dict):
        return "optimizer is not a state dict"
    for key in ("rng", "run", "attrs"):
        if not isinstance(payload.get(key, {}), dict):
            return f"{key} is not a mapping"
    for key in ("data_source", "data_fingerprint"):
        if not isinstance(payload.get(key, ""), str):
            return f"{key} is not text"
    attrs = payload.get("attrs", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in attrs.items()):
        return "attrs is not a mapping of names to text"
    rng = payload.get("rng", {})
    for key in ("torch", "generator"):
        if rng and not (isinstance(rng.get(key), torch.Tensor) and rng[key].dtype == torch.uint8):
            return f"rng {key} is not a generator state"
    return _run_problem(payload.get("run", {}))


def _weights_problem(key: str, weights: Any) -> str | None:
    """Weights that are not a mapping of finite float tensors: a model built from them would give
    NaN embeddings (and every score and map from them would be NaN) without any error."""
    if not isinstance(weights, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()
    ):
        return f"{key} is not a set of weight tensors"
    for name, w in weights.items():
        if w.is_floating_point() and not torch.isfinite(w).all():
            return f"{key} weight {name} holds NaN or infinite values"
    return None


def _run_problem(run: dict[str, Any]) -> str | None:
    """The run record a resumed run continues from (core/training/loop.py's _RunState)."""
    if not run:
        return None
    number = (int, float)
    checks = {
        "best_avg": lambda v: isinstance(v, number) and not isinstance(v, bool),
        "best_epoch": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "loss_steps": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "best_val": lambda v: v is None or _numbers_by_name(v, allow_nested=True),
        "loss_sums": lambda v: _numbers_by_name(v),
        "history": lambda v: (
            isinstance(v, list)
            and all(isinstance(h, dict) and isinstance(h.get("epoch"), int) for h in v)
        ),
    }
    for key, ok in checks.items():
        if key in run and not ok(run[key]):
            return f"run {key} is not what a run records"
    return None


def _numbers_by_name(d: Any, allow_nested: bool = False) -> bool:
    if not isinstance(d, dict):
        return False
    for k, v in d.items():
        if not isinstance(k, str):
            return False
        if allow_nested and isinstance(v, dict):
            if not _numbers_by_name(v):
                return False
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
    return True


def _numbered_run(run: dict[str, Any], version: int) -> dict[str, Any]:
    """The run record with its epochs numbered from 1; format 1 numbered them from 0."""
    if version >= 2 or not run:
        return run
    out = dict(run)
    if isinstance(run.get("best_epoch"), int):
        out["best_epoch"] = run["best_epoch"] + 1  # -1 (none yet) becomes 0
    if isinstance(run.get("history"), list):
        out["history"] = numbered_history(run["history"])
    return out


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def data_differences(ckpt: Checkpoint, data: Any) -> list[str]:
    """How ``data`` (an ``AVDataset``) differs from the data ``ckpt`` was trained on, one
    phrase per difference (empty when the checkpoint fits): feature dimensions, then classes."""
    out = []
    if ckpt.audio_dim != data.audio_dim:
        out.append(f"audio features {ckpt.audio_dim}-d, the data's {data.audio_dim}-d")
    if ckpt.visual_dim != data.visual_dim:
        out.append(f"visual features {ckpt.visual_dim}-d, the data's {data.visual_dim}-d")
    ours, theirs = list(ckpt.class_names), list(data.class_names)
    if ours != theirs:
        if len(ours) != len(theirs):
            out.append(f"{len(ours)} classes, the data has {len(theirs)}")
        else:
            i = next(i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b)
            out.append(f"class {i} is {ours[i]!r}, the data's is {theirs[i]!r}")
    return out
