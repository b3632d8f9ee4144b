"""Which train pairs have labels: simulating a low label rate, and writing new labels to disk.

``hide_labels`` keeps the labels of a fraction of the train pairs (``data.label_fraction``) so that
any labelled file can stand in for a mostly unlabelled one; the hidden labels are kept aside
(``Split.true_labels``) only to measure how often the teacher's pseudo-labels are right.

``write_labelled_copy`` and ``write_manifest`` save labels that a user assigned (e.g. accepted
pseudo-labels) as a new feature file or a new manifest, never over the source, so that a run can be
retrained from them; ``write_cleaned_copy`` saves the fixes of an audit (relabelled, unlabelled and
dropped train pairs) the same way. A copy's clip paths are absolute, so it finds its clips wherever
it is saved.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np

from core.atomic import refuse_overwrite
from core.data.dataset import (
    UNLABELLED,
    AVDataset,
    DataError,
    Split,
    absolute_clip_path,
    read_split,
)


def keep_labels(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """[N] bool: which of the labelled pairs keep their label when only ``fraction`` do.

    Stratified: each class keeps ``round(fraction * n_c)`` of its n_c labelled pairs, at least
    one, drawn with ``seed``; unlabelled pairs (-1) stay unlabelled. A pure function of its
    arguments, so a run's config reproduces its labelled subset.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    keep = labels != UNLABELLED
    if fraction == 1.0:
        return keep
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels[labels != UNLABELLED]):
        idx = np.flatnonzero(labels == c)
        k = max(1, round(fraction * len(idx)))
        keep[rng.permutation(idx)[:k]] = True
    return keep


def hide_labels(split: Split, fraction: float, seed: int) -> Split:
    """The split with all but ``fraction`` of its labels hidden (set to -1), the originals kept in
    ``true_labels``. Unchanged when ``fraction`` is 1."""
    if fraction == 1.0:
        return split
    keep = keep_labels(split.labels, fraction, seed)
    true = split.true_labels if split.true_labels is not None else split.labels
    return replace(split, labels=np.where(keep, split.labels, UNLABELLED), true_labels=true)


def with_label_fraction(data: AVDataset, fraction: float, seed: int) -> AVDataset:
    """``data`` with the labels of its train split hidden as ``hide_labels`` does (val and test
    untouched: model selection and MAP need their labels)."""
    return replace(data, train=hide_labels(data.train, fraction, seed))


def write_labelled_copy(data: AVDataset, assignments: Mapping[int, int], dest: str | Path) -> Path:
    """Copy ``data``'s feature file to ``dest`` with the train labels that ``data`` holds, and
    ``assignments`` (positions in ``data.train`` -> class id, or -1 to unlabel) on top.

    So with ``data`` as loaded, the copy differs from the source only at the assigned pairs; with
    ``data`` after ``with_label_fraction``, the hidden labels are written as -1 too (the copy is
    what that run saw, plus the assignments). Everything else is copied unchanged (one-hot label
    rows stay one-hot). The source is never written: ``dest`` must be another path, and it appears
    whole or not at all (temp file, then a rename).
    """
    labels = data.train.labels.copy()
    for i, c in assignments.items():
        if not _is_id(i):  # a bool is an int to Python: True relabelled pair 1
            raise DataError(f"train pair {i!r} is not a pair number")
        if not 0 <= i < len(labels):
            raise DataError(f"train pair {i} does not exist (train has {len(labels)} pairs)")
        _check_class(data, f"train pair {i}", c)
        labels[i] = c
    rows = data.train_rows if data.train_rows is not None else np.arange(len(labels))
    return _write_copy(data, dict(zip(rows.tolist(), labels.tolist(), strict=True)), (), dest)


def write_cleaned_copy(
    data: AVDataset,
    relabel: Mapping[int, int],
    drop: Iterable[int],
    dest: str | Path,
) -> Path:
    """Copy ``data``'s feature file to ``dest`` with fixes to its train arrays, by row of the
    file's train arrays (the rows ``avexplorer audit`` names, those the loader carves for val
    included): ``relabel`` row -> class id (or -1: mark unlabelled), ``drop`` rows removed from
    every train array (features, labels, clip paths, segments). A row both relabelled and dropped
    is dropped. The source is never written, as for ``write_labelled_copy``; clip paths are made
    absolute, so previews and playback still find the clips wherever the copy is saved."""
    n = len(data.train) + (len(data.val) if data.train_rows is not None else 0)
    drop = list(drop)
    for i in [*relabel, *drop]:
        if not _is_id(i):
            raise DataError(f"train row {i!r} is not a row number")
        if not 0 <= i < n:
            raise DataError(f"train row {i} does not exist (the file has {n} train rows)")
    drop = sorted(set(int(i) for i in drop))
    for i, c in relabel.items():
        _check_class(data, f"train row {i}", c)
    if len(drop) == n:
        raise DataError("every train pair would be dropped; the copy would have no train split")
    return _write_copy(data, dict(relabel), drop, dest)


def _check_class(data: AVDataset, what: str, c: int) -> None:
    if not _is_id(c):
        raise DataError(f"{what}: class {c!r} is not a class id")
    if not (c == UNLABELLED or 0 <= c < data.num_classes):
        raise DataError(f"{what}: class {c} is not one of 0..{data.num_classes - 1}")


def _write_copy(
    data: AVDataset, row_labels: Mapping[int, int], drop: Iterable[int], dest: str | Path
) -> Path:
    """The one writer of edited copies: the source file copied to ``dest`` (never over it) with
    ``row_labels`` (file train row -> label) set and the ``drop`` rows removed from every train
    array; whole or not at all."""
    source = Path(data.source)
    dest = Path(dest)
    if not source.is_file():
        raise DataError(f"{source}: the source feature file is gone; cannot copy it")
    refuse_overwrite(dest, [("the source file", source)])
    n = len(data.train) + (0 if data.train_rows is None else len(data.val))
    rows = np.fromiter(row_labels.keys(), np.int64, len(row_labels))
    labels = np.fromiter(row_labels.values(), np.int64, len(row_labels))
    keep = np.ones(n, bool)
    keep[list(drop)] = False
    loaded = data.train_rows if data.train_rows is not None else np.arange(len(data.train))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        shutil.copyfile(source, tmp)
        with h5py.File(tmp, "r+") as f:
            y = f["lab_train"][()]
            if len(y) != n:
                raise DataError(f"{source}: lab_train no longer matches the loaded data")
            _check_same_features(f, tmp, source, data, loaded)
            if y.ndim == 2 and y.shape[1] == 1:  # a column of class ids (core/data/dataset.py)
                y = y.astype(np.int64)
                y[rows, 0] = labels
            elif y.ndim == 2:
                y[rows] = 0
                hot = labels != UNLABELLED
                y[rows[hot], labels[hot]] = 1
            else:
                y = y.astype(np.int64)  # -1 needs a signed type
                y[rows] = labels
            del f["lab_train"]
            f.create_dataset("lab_train", data=y)
            _absolute_paths(f, data)
            if not keep.all():
                _drop_train_rows(f, keep)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _absolute_paths(f: h5py.File, data: AVDataset) -> None:
    """Every ``path_*`` array of the copy made absolute (``absolute_clip_path``): saved in
    another folder, the copy still finds its clips for thumbnails, lengths and playback."""
    for key in [k for k in f if k.startswith("path_")]:
        ds = f[key]
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 1:
            continue
        raw = [p.decode() if isinstance(p, bytes) else str(p) for p in ds[()]]
        del f[key]
        f.create_dataset(
            key,
            data=np.array([absolute_clip_path(p, data) for p in raw], dtype=object),
            dtype=h5py.string_dtype(),
        )


def _drop_train_rows(f: h5py.File, keep: np.ndarray) -> None:
    """Keep only the ``keep`` rows of every train array (any ``*_train`` dataset of one row per
    train pair: features, labels, paths, segments and their counts)."""
    for key in [k for k in f if k.endswith("_train")]:
        ds = f[key]
        if not isinstance(ds, h5py.Dataset) or ds.ndim == 0 or len(ds) != len(keep):
            continue
        x, dtype = ds[()][keep], ds.dtype
        del f[key]
        f.create_dataset(key, data=x, dtype=dtype)


def _is_id(x: object) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _check_same_features(
    f: h5py.File, copy: Path, source: Path, data: AVDataset, rows: np.ndarray
) -> None:
    """The labels are written beside the features they were given for: a source file that was
    extracted again since ``data`` was loaded (same size, other clips or features) is refused
    rather than given the old labels."""
    train = read_split(f, "train", copy)
    for name in ("audio", "visual"):
        now = getattr(train, name)[rows]
        if now.shape != getattr(data.train, name).shape or not np.array_equal(
            now, getattr(data.train, name)
        ):
            raise DataError(
                f"{source}: its {name} features changed since it was loaded (extracted again?); "
                "open it again before saving labels"
            )


def write_manifest(
    dest: str | Path, rows: Iterable[tuple[str, str] | tuple[str, str, str]]
) -> Path:
    """Write a manifest CSV (``path,label[,split]``, the format ``extract`` reads) atomically.

    ``rows`` are (clip path, class name or "" for unlabelled[, split]); paths under the
    manifest's folder are written relative to it, others absolute.
    """
    dest = Path(dest)
    rows = list(rows)
    with_split = bool(rows) and all(len(r) == 3 for r in rows)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    base = dest.parent.resolve()
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["path", "label", "split"] if with_split else ["path", "label"])
            for row in rows:
                p = Path(row[0]).resolve()
                text = str(p.relative_to(base)) if p.is_relative_to(base) else str(p)
                w.writerow([text, *row[1:]] if with_split else [text, row[1]])
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
