"""What the app keeps in each run folder besides the core's files, so runs outlive the session.

The core writes ``history.jsonl`` (one line per epoch: losses, val MAP, r) and the checkpoints;
the app adds ``run.json`` (name, config, dataset identity, start time, state, epochs done) at the
start of a run, and both it and ``steps.npz`` (the per-step losses and r) at each epoch's end and
at the run's end (quitting included: the app stops the run and records it before it exits). On
relaunch the app reads them back for the runs made on the dataset it opened. A run folder
without ``run.json`` (a run made before the app wrote it, or by the CLI into the runs folder) is
listed from what its checkpoint holds; a folder that cannot be read is reported by name and the
others still listed. Qt-free and plain files only.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from core.atomic import atomic_write
from core.data.dataset import AVDataset
from core.errors import UserError
from core.evaluation.scores import MapScores
from core.training.checkpoint import load_checkpoint
from core.training.events import EpochEnd, numbered_history

RECORD = "run.json"
STEPS = "steps.npz"
HISTORY = "history.jsonl"
CHECKPOINTS = {"best": "model.pt", "last": "last.pt"}


def dataset_key(data: AVDataset | None) -> dict[str, Any]:
    """What identifies a dataset for a run: classes, feature dims and split sizes."""
    if data is None:
        return {}
    return {
        "classes": list(data.class_names),
        "audio_dim": int(data.audio_dim),
        "visual_dim": int(data.visual_dim),
        "sizes": [len(data.train), len(data.val), len(data.test)],
    }


def same_dataset(record: dict[str, Any], data: AVDataset) -> bool:
    return record.get("dataset_key") == dataset_key(data)


def record_of(run: Any, data: AVDataset | None) -> dict[str, Any]:
    """The ``run.json`` of a ``state.Run``."""
    return {
        "name": run.name,
        "config": run.config.to_dict(),  # as resolved once the run started
        "requested": run.requested.to_dict() if run.requested is not None else None,
        "settings": run.settings,
        "dataset": run.dataset,
        "dataset_key": dataset_key(data),
        "created": run.created,
        "state": run.state,
        "steps_per_epoch": run.steps_per_epoch,
        "total_epochs": run.total_epochs,
        "epochs": len(run.epochs),  # finished epochs (history.jsonl has their numbers)
    }


def write(folder: Path, record: dict[str, Any]) -> None:
    with atomic_write(folder / RECORD, "w") as f:
        f.write(json.dumps(record, indent=1))


def write_steps(folder: Path, steps: list[int], losses: dict[str, list[float]], r: list[float]):
    if not steps or not folder.is_dir():
        return
    with atomic_write(folder / STEPS) as f:
        np.savez_compressed(
            f,
            steps=np.asarray(steps, np.int64),
            r=np.asarray(r, np.float32),
            **{f"loss/{k}": np.asarray(v, np.float32) for k, v in losses.items()},
        )


def scan(
    root: Path, problem: Callable[[Path, str], None] | None = None
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(folder, record) of every run folder under ``root``, oldest first: its ``run.json``, else
    one made from its checkpoint (``record_from_checkpoint``). A folder that holds either but
    cannot be read is passed to ``problem`` with the reason, and skipped."""
    if not root.is_dir():
        return
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            if (folder / RECORD).is_file():
                record = json.loads((folder / RECORD).read_text())
                if not isinstance(record, dict):
                    raise ValueError(f"{RECORD} is not a record of a run")
            elif checkpoints(folder):
                record = record_from_checkpoint(folder)
            else:
                continue  # not a run folder
        except (OSError, ValueError, UserError) as e:
            if problem is not None:  # the reason, with the folder's own path left out
                why = str(e).splitlines()[0] if str(e) else type(e).__name__
                problem(folder, why.replace(f"{folder}{os.sep}", ""))
            continue
        yield folder, record


def names(root: Path) -> list[str]:
    """The names of the runs recorded under ``root`` (their ``run.json``; unreadable ones left
    out), whatever data they trained on."""
    found = []
    for path in sorted(root.glob(f"*/{RECORD}")) if root.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and isinstance(record.get("name"), str):
            found.append(record["name"])
    return found


def record_from_checkpoint(folder: Path) -> dict[str, Any]:
    """A ``run.json``-like record of a run folder that has none, from what its checkpoint holds
    (``last.pt``, else ``model.pt``): config, dataset identity, epochs done. It has no
    ``dataset_key`` (split sizes are not stored); ``matches`` identifies its dataset instead."""
    found = checkpoints(folder)
    ckpt = load_checkpoint(found.get("last") or found["best"])
    done = ckpt.epoch >= ckpt.config.optim.epochs
    return {
        "name": folder.name,
        "config": ckpt.config.to_dict(),
        "dataset": Path(ckpt.data_source).name if ckpt.data_source else "",
        "from_checkpoint": {
            "classes": list(ckpt.class_names),
            "audio_dim": int(ckpt.audio_dim),
            "visual_dim": int(ckpt.visual_dim),
            "fingerprint": ckpt.data_fingerprint,
        },
        "created": (folder / CHECKPOINTS["best" if "best" in found else "last"]).stat().st_mtime,
        "state": "finished" if done and ckpt.step == 0 else "stopped",
        "total_epochs": ckpt.config.optim.epochs,
    }


def matches(record: dict[str, Any], data: AVDataset) -> bool:
    """Whether a run's record says it trained on ``data``: its ``dataset_key``, or for a record
    made from a checkpoint, the data's fingerprint (else its classes and dimensions)."""
    stored = record.get("from_checkpoint")
    if not isinstance(stored, dict):
        return same_dataset(record, data)
    if stored.get("fingerprint"):
        return stored["fingerprint"] == data.fingerprint
    theirs = (list(data.class_names), data.audio_dim, data.visual_dim)
    return (stored.get("classes"), stored.get("audio_dim"), stored.get("visual_dim")) == theirs


class RecordError(UserError, ValueError):
    """A run's file that cannot be read back; the run is skipped and named (``scan``'s caller)."""


# What a damaged or foreign file raises while it is parsed into records.
_DAMAGED = (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError)


def read_epochs(folder: Path) -> list[EpochEnd]:
    """The epochs of ``history.jsonl`` as the events the live run had reported; a
    ``RecordError`` naming the file and line when it is damaged."""
    path = folder / HISTORY
    if not path.is_file():
        return []
    records = []
    for n, line in enumerate(_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            h = json.loads(line)
            _epoch_of(h)
        except _DAMAGED:
            raise RecordError(f"{HISTORY} line {n} is not the record of an epoch") from None
        records.append(h)
    try:
        return [_epoch_of(h) for h in numbered_history(records)]
    except _DAMAGED:
        raise RecordError(f"{HISTORY}: its epochs are not numbered as a run numbers them") from None


def _epoch_of(h: dict[str, Any]) -> EpochEnd:
    if not isinstance(h, dict):
        raise TypeError("not a record")
    pseudo = h.get("pseudo") or {}
    return EpochEnd(
        int(h["epoch"]),
        {str(k): float(v) for k, v in dict(h.get("losses", {})).items()},
        MapScores(**h["val"]),
        float(h.get("r", 1.0)),
        float(h.get("seconds", 0.0)),
        bool(h.get("best", False)),
        pseudo.get("accuracy"),  # few labels, simulated rate
    )


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RecordError(f"{path.name} is not UTF-8 text") from None


def read_steps(folder: Path) -> tuple[list[int], dict[str, list[float]], list[float]]:
    path = folder / STEPS
    if not path.is_file():
        return [], {}, []
    try:
        with np.load(path, allow_pickle=False) as z:
            losses = {k[5:]: z[k].astype(float).tolist() for k in z.files if k.startswith("loss/")}
            steps = z["steps"].astype(int)
            if len(steps) and steps[0] == 0:  # written when steps were numbered from 0
                steps = steps + 1
            return steps.tolist(), losses, z["r"].astype(float).tolist()
    except (*_DAMAGED, OSError, EOFError, zipfile.BadZipFile):
        raise RecordError(f"{STEPS} is damaged") from None


def checkpoints(folder: Path) -> dict[str, Path]:
    return {kind: folder / name for kind, name in CHECKPOINTS.items() if (folder / name).is_file()}


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def when(record: dict[str, Any]) -> float:
    return float(record.get("created", time.time()))
