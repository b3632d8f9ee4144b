"""Audio-visual pair datasets in the lineage's HDF5 layout: loading, validation, saving, splits.

Layout (one file per dataset)::

    audio_{split}   [N, Da]  float (or uint8, YouTube-8M style, dequantised as (x - 128) / 256)
    visual_{split}  [N, Dv]
    lab_{split}     [N] int class ids, or [N, C] one-hot
    path_{split}    [N] utf-8 clip paths (optional; ours, for previews)
    class_names     [C] utf-8 (optional; ours)
    attrs: audio_encoder, visual_encoder (optional; ours: which encoders made the features)

with split in {train, test} and optionally val.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from core.errors import UserError

SPLITS = ("train", "val", "test")


class DataError(UserError, ValueError):
    """A feature file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Split:
    audio: np.ndarray  # [N, Da] float32
    visual: np.ndarray  # [N, Dv] float32
    labels: np.ndarray  # [N] int64
    paths: tuple[str, ...] | None = None  # clip paths, when known

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> Split:
        paths = tuple(self.paths[i] for i in index) if self.paths is not None else None
        return Split(self.audio[index], self.visual[index], self.labels[index], paths)


@dataclass(frozen=True)
class AVDataset:
    train: Split
    val: Split
    test: Split
    class_names: tuple[str, ...]
    val_carved: bool = False  # True when val was carved from the file's train split
    source: str = ""
    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def audio_dim(self) -> int:
        return int(self.train.audio.shape[1])

    @property
    def visual_dim(self) -> int:
        return int(self.train.visual.shape[1])

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return getattr(self, name)


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of indices into (kept, held_out), ~fraction of each class held out.

    Every class with at least two items keeps at least one and gives at least one.
    """
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        k = min(max(round(fraction * len(idx)), 1), len(idx) - 1) if len(idx) >= 2 else 0
        held.append(idx[:k])
    held_out = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    kept = np.setdiff1d(np.arange(len(labels)), held_out)
    return kept, held_out


def load_h5(path: str | Path, val_fraction: float = 0.1, seed: int = 0) -> AVDataset:
    """Load and validate a feature file; carve a seeded stratified val split if it has none."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: not a readable HDF5 file ({e})") from None
    with f:
        names = _class_names(f, path)
        raw = {s: _read_split(f, s, path) for s in SPLITS if f"audio_{s}" in f or s != "val"}
        attrs = {k: str(v) for k, v in f.attrs.items()}
    num_classes = (
        len(names) if names else 1 + max(int(s.labels.max(initial=-1)) for s in raw.values())
    )
    for s, split in raw.items():
        bad = np.flatnonzero((split.labels < 0) | (split.labels >= num_classes))
        if len(bad):
            raise DataError(
                f"{path}: lab_{s}[{bad[0]}] = {split.labels[bad[0]]} is out of range "
                f"0..{num_classes - 1}" + (" (class_names has that many entries)" if names else "")
            )
    dims = {(s.audio.shape[1], s.visual.shape[1]) for s in raw.values()}
    if len(dims) > 1:
        raise DataError(f"{path}: feature dimensions differ between splits: {sorted(dims)}")
    carved = "val" not in raw
    if carved:
        kept, held = stratified_split(raw["train"].labels, val_fraction, seed)
        raw["val"] = raw["train"].subset(held)
        raw["train"] = raw["train"].subset(kept)
    if not names:
        names = [str(c) for c in range(num_classes)]
    return AVDataset(
        train=raw["train"],
        val=raw["val"],
        test=raw["test"],
        class_names=tuple(names),
        val_carved=carved,
        source=str(path),
        attrs=attrs,
    )


def save_h5(path: str | Path, data: AVDataset, include_val: bool = True) -> None:
    """Write a dataset in the lineage layout (atomically: temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        for s in SPLITS:
            if s == "val" and not include_val:
                continue
            write_split(f, s, data.split(s))
        f.create_dataset(
            "class_names", data=np.array(data.class_names, dtype=object), dtype=h5py.string_dtype()
        )
        for k, v in data.attrs.items():
            f.attrs[k] = v
    tmp.replace(path)


def write_split(f: h5py.File, name: str, split: Split) -> None:
    f.create_dataset(f"audio_{name}", data=split.audio.astype(np.float32))
    f.create_dataset(f"visual_{name}", data=split.visual.astype(np.float32))
    f.create_dataset(f"lab_{name}", data=split.labels.astype(np.int64))
    if split.paths is not None:
        f.create_dataset(
            f"path_{name}", data=np.array(split.paths, dtype=object), dtype=h5py.string_dtype()
        )


def _class_names(f: h5py.File, path: Path) -> list[str]:
    if "class_names" not in f:
        return []
    raw = f["class_names"][()]
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in np.atleast_1d(raw)]
    if len(set(names)) != len(names):
        raise DataError(f"{path}: class_names has duplicate entries")
    return names


def _read_split(f: h5py.File, s: str, path: Path) -> Split:
    for key in (f"audio_{s}", f"visual_{s}", f"lab_{s}"):
        if key not in f:
            raise DataError(f"{path}: missing dataset {key!r} (found: {', '.join(sorted(f))})")
    audio = _features(f, f"audio_{s}", path)
    visual = _features(f, f"visual_{s}", path)
    labels = _labels(f, f"lab_{s}", path)
    n = {f"audio_{s}": len(audio), f"visual_{s}": len(visual), f"lab_{s}": len(labels)}
    if len(set(n.values())) > 1:
        raise DataError(f"{path}: lengths differ: " + ", ".join(f"{k}={v}" for k, v in n.items()))
    paths = None
    if f"path_{s}" in f:
        raw = f[f"path_{s}"][()]
        paths = tuple(p.decode() if isinstance(p, bytes) else str(p) for p in raw)
        if len(paths) != len(labels):
            raise DataError(f"{path}: path_{s} has {len(paths)} entries, lab_{s} has {len(labels)}")
    return Split(audio, visual, labels, paths)


def _features(f: h5py.File, key: str, path: Path) -> np.ndarray:
    ds = f[key]
    if not isinstance(ds, h5py.Dataset) or ds.ndim != 2:
        raise DataError(
            f"{path}: {key} must be a 2-D array [N, D], found shape {getattr(ds, 'shape', '?')}"
        )
    x = ds[()]
    if x.dtype == np.uint8:
        x = (x.astype(np.float32) - 128.0) / 256.0
    elif not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{path}: {key} has non-numeric dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(
            f"{path}: {key}[{row}, {col}] is {x[row, col]} (NaN/inf); "
            f"{int(bad.any(axis=1).sum())} rows affected"
        )
    return x


def _labels(f: h5py.File, key: str, path: Path) -> np.ndarray:
    y = f[key][()]
    if y.ndim == 2:  # one-hot, as some lineage files store it
        if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
            raise DataError(f"{path}: {key} is 2-D but not one-hot (each row needs a single 1)")
        return y.argmax(axis=1).astype(np.int64)
    if y.ndim != 1:
        raise DataError(
            f"{path}: {key} must be [N] class ids or [N, C] one-hot, found shape {y.shape}"
        )
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            raise DataError(f"{path}: {key} holds non-integer labels")
    elif not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: {key} has non-numeric dtype {y.dtype}")
    return y.astype(np.int64)
