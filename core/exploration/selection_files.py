"""Writing selections: clip lists, embeddings and feature files of a group, and named selections.

Every writer is atomic (``core.atomic``): the file appears whole or not at all, so an export to a
full disk or a read-only folder leaves nothing half-written, and the error names the file. The
open dataset is never a target (``core.atomic.refuse_overwrite``). Named selections live in one
JSON file per dataset (``selections_file``), checked against the split's ``fingerprint`` when
read back.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from core.atomic import atomic_write, refuse_overwrite
from core.data.dataset import (
    AVDataset,
    save_h5,
    user_may_write,
    with_absolute_clip_paths,
)
from core.exploration.selection import Selection, SelectionError

SELECTIONS_SUFFIX = ".selections.json"


# ----- exports ---------------------------------------------------------------------------------
def write_clip_csv(
    path: str | Path,
    sel: Selection,
    labels: np.ndarray,
    class_names: Sequence[str],
    names: Sequence[str],
    paths: Sequence[str] | None,
) -> Path:
    """One row per clip with either side selected: index, name, class, path, which sides."""
    path = Path(path)
    with atomic_write(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "clip", "label", "class", "path", "audio", "visual"])
        for i in sel.clips():
            label = int(labels[i])
            w.writerow(
                [
                    int(i),
                    names[i],
                    label,
                    class_names[label],
                    paths[i] if paths is not None else "",
                    int(sel.audio[i]),
                    int(sel.visual[i]),
                ]
            )
    return path


def write_embeddings_npz(
    path: str | Path,
    sel: Selection,
    audio: np.ndarray,
    visual: np.ndarray,
    data: AVDataset,
    epochs_trained: int,
) -> Path:
    """The embeddings of the selected clips (both sides of each) in the app's NPZ format."""
    from core.training.embedding import save_embeddings

    path = Path(path)
    idx = sel.clips()
    save_embeddings(
        path, audio[idx], visual[idx], data.test.subset(idx), data.class_names, epochs_trained
    )
    return path


def write_feature_file(path: str | Path, sel: Selection, data: AVDataset) -> Path:
    """A new feature file whose test split holds just the selected clips' pairs.

    Train and val are the source's, so a model of the source still fits it and ``avexplorer
    eval --data`` measures the model on just this group.
    """
    path = Path(path)
    refuse_overwrite(path, [("the open dataset", data.source)])
    idx = sel.clips()
    if not len(idx):
        raise SelectionError("the selection is empty: nothing to write")
    subset = replace(
        data,
        test=data.test.subset(idx),
        attrs={**data.attrs, "selected_from": str(data.source or "")},
    )
    # Saved anywhere, the file still finds its clips (previews, lengths, playback).
    save_h5(path, with_absolute_clip_paths(subset), include_val=True)
    return path


# ----- named selections ------------------------------------------------------------------------
def fingerprint(labels: np.ndarray, class_names: Sequence[str]) -> str:
    """Identifies a split for saved selections: its size, classes and label sequence."""
    h = hashlib.sha1(np.asarray(labels, np.int64).tobytes())
    h.update("\x00".join(class_names).encode())
    return f"{len(labels)}-{h.hexdigest()[:16]}"


def selections_file(data: AVDataset, fallback_dir: str | Path) -> Path:
    """Where the dataset's named selections live: beside its file when the user's files may go
    there (``user_may_write``: writable, and not the installed package's, as the demo's
    is), else in ``fallback_dir`` under the test split's fingerprint."""
    source = Path(data.source) if data.source else None
    if source is not None and source.is_file() and user_may_write(source.parent):
        return source.with_name(source.name + SELECTIONS_SUFFIX)
    key = fingerprint(data.test.labels, data.class_names)
    return Path(fallback_dir) / f"{key}{SELECTIONS_SUFFIX}"


def read_named(path: str | Path) -> dict[str, Any]:
    """The selections file: ``{"fingerprint": ..., "selections": {name: {audio, visual}}}``."""
    path = Path(path)
    if not path.exists():
        return {"selections": {}}
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SelectionError(f"{path}: not a readable selections file ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("selections"), dict):
        raise SelectionError(f"{path}: not a selections file (no 'selections' table)")
    return doc


def load_named(path: str | Path, name: str, key: str) -> Selection:
    """The selection saved as ``name``, checked against the split's fingerprint ``key``."""
    doc = read_named(path)
    entry = doc["selections"].get(name)
    if entry is None:
        raise SelectionError(f"{path}: no selection named {name!r}")
    if doc.get("fingerprint") != key:
        raise SelectionError(f"{path}: the selections were saved with another dataset")
    n = int(key.split("-")[0])
    try:
        audio = Selection.of_clips(n, entry["audio"]).audio
        visual = Selection.of_clips(n, entry["visual"]).visual
    except (KeyError, TypeError, ValueError) as e:
        raise SelectionError(f"{path}: selection {name!r} is damaged ({e})") from None
    return Selection(audio, visual)


def save_named(path: str | Path, name: str, sel: Selection, key: str) -> None:
    """Add (or replace) ``name`` in the selections file, atomically."""
    name = name.strip()
    if not name:
        raise SelectionError("a saved selection needs a name")
    path = Path(path)
    doc = read_named(path)
    if doc.get("fingerprint", key) != key:
        raise SelectionError(f"{path}: holds the selections of another dataset")
    doc["fingerprint"] = key
    doc["selections"][name] = {
        "audio": np.flatnonzero(sel.audio).tolist(),
        "visual": np.flatnonzero(sel.visual).tolist(),
    }
    with atomic_write(path, "w") as f:
        f.write(json.dumps(doc, indent=1))


EXPORTS = {"csv": "clip list", "npz": "embeddings", "h5": "feature file"}


def export(
    kind: str,
    path: str | Path,
    sel: Selection,
    data: AVDataset,
    names: Sequence[str] | dict[int, str],
    embeddings: tuple[np.ndarray, np.ndarray, int] | None = None,
) -> Path:
    """Write the selection as a clip list (``csv``), embeddings (``npz``: ``embeddings`` is
    (audio, visual, epochs trained)) or a feature file (``h5``); never onto the dataset itself."""
    if kind not in EXPORTS:
        raise SelectionError(f"unknown export {kind!r}; choose one of {', '.join(EXPORTS)}")
    refuse_overwrite(path, [("the open dataset", data.source)])
    if not sel:
        raise SelectionError("the selection is empty: nothing to write")
    if kind == "csv":
        t = data.test
        return write_clip_csv(path, sel, t.labels, data.class_names, names, t.paths)  # type: ignore[arg-type]
    if kind == "npz":
        if embeddings is None:
            raise SelectionError("no embeddings to export: train a model or load a checkpoint")
        audio, visual, epochs = embeddings
        return write_embeddings_npz(path, sel, audio, visual, data, epochs)
    return write_feature_file(path, sel, data)
