"""What the app keeps in each run folder besides the core's files, so runs outlive the session.

The core writes ``history.jsonl`` (one line per epoch: losses, val MAP, r) and the checkpoints;
the app adds ``run.json`` (name, config, dataset identity, start time, final state) at the start
and end of a run and ``steps.npz`` (the per-step losses and r) at its end. On relaunch the app
reads them back for the runs made on the dataset it opened. Qt-free and plain files only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from core.atomic import atomic_write
from core.data import AVDataset
from core.events import EpochEnd
from core.scores import MapScores

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
        "config": run.config.to_dict(),
        "dataset": run.dataset,
        "dataset_key": dataset_key(data),
        "created": run.created,
        "state": run.state,
        "steps_per_epoch": run.steps_per_epoch,
        "total_epochs": run.total_epochs,
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


def scan(root: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(folder, record) of every run folder under ``root``, oldest first."""
    if not root.is_dir():
        return
    for folder in sorted(p for p in root.iterdir() if (p / RECORD).is_file()):
        try:
            yield folder, json.loads((folder / RECORD).read_text())
        except (OSError, ValueError):
            continue


def read_epochs(folder: Path) -> list[EpochEnd]:
    """The epochs of ``history.jsonl`` as the events the live run had reported."""
    path = folder / HISTORY
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            h = json.loads(line)
            out.append(
                EpochEnd(
                    int(h["epoch"]),
                    dict(h.get("losses", {})),
                    MapScores(**h["val"]),
                    float(h.get("r", 1.0)),
                    float(h.get("seconds", 0.0)),
                    bool(h.get("best", False)),
                    (h.get("pseudo") or {}).get("accuracy"),  # few labels, simulated rate
                )
            )
    return out


def read_steps(folder: Path) -> tuple[list[int], dict[str, list[float]], list[float]]:
    path = folder / STEPS
    if not path.is_file():
        return [], {}, []
    with np.load(path) as z:
        losses = {k[5:]: z[k].astype(float).tolist() for k in z.files if k.startswith("loss/")}
        return z["steps"].astype(int).tolist(), losses, z["r"].astype(float).tolist()


def checkpoints(folder: Path) -> dict[str, Path]:
    return {kind: folder / name for kind, name in CHECKPOINTS.items() if (folder / name).is_file()}


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def when(record: dict[str, Any]) -> float:
    return float(record.get("created", time.time()))
