"""Audio-visual pair datasets in the lineage's HDF5 layout: loading, validation, saving, splits.

Layout (one file per dataset)::

    audio_{split}   [N, Da]  float (or uint8, YouTube-8M style, dequantised as (x - 128) / 256)
    visual_{split}  [N, Dv]
    lab_{split}     [N] int class ids, or [N, C] one-hot; -1 (or an all-zero one-hot row) marks
                    an unlabelled pair, allowed in train only
    path_{split}    [N] utf-8 clip paths (optional; ours, for previews)
    audio_seg_{split}, visual_seg_{split} [N, T, D], seg_count_{split} [N] (optional; ours:
                    per-segment features, see core/data/segments.py); 3-D audio_{split} /
                    visual_{split} (per-second files such as AVE's) load pooled, segments kept
    class_names     [C] utf-8 (optional; ours)
    attrs: audio_encoder, visual_encoder (optional; ours: which encoders made the features)

with split in {train, test} and optionally val.

Unlabelled pairs (label -1) are training data for psd (the teacher labels them) and infonce;
triplet skips them. Val and test pairs must be labelled (model selection and MAP need classes),
so a val split carved from train is drawn from its labelled pairs only.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np

from core.atomic import atomic_path, open_h5
from core.data.errors import DataError
from core.data.segments import DEFAULT_SECONDS, Segments, masked_mean

SPLITS = ("train", "val", "test")
UNLABELLED = -1  # the class id of a pair without a label


@dataclass(frozen=True)
class Split:
    audio: np.ndarray  # [N, Da] float32
    visual: np.ndarray  # [N, Dv] float32
    labels: np.ndarray  # [N] int64, UNLABELLED (-1) for a pair without a label
    paths: tuple[str, ...] | None = None  # clip paths, when known
    segments: Segments | None = None  # per-segment features, when the file has them
    # The labels before some were hidden to simulate a low label rate (core.data.labels), kept only
    # to measure pseudo-label accuracy; None when nothing was hidden.
    true_labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def labelled(self) -> np.ndarray:
        """[N] bool: the pairs that have a label."""
        return self.labels != UNLABELLED

    def subset(self, index: np.ndarray) -> Split:
        paths = tuple(self.paths[i] for i in index) if self.paths is not None else None
        segments = self.segments.take(index) if self.segments is not None else None
        true = self.true_labels[index] if self.true_labels is not None else None
        return Split(
            self.audio[index], self.visual[index], self.labels[index], paths, segments, true
        )


@dataclass(frozen=True)
class AVDataset:
    train: Split
    val: Split
    test: Split
    class_names: tuple[str, ...]
    val_carved: bool = False  # True when val was carved from the file's train split
    # Rows of the file's train split that ``train`` holds, in order (None: all of them); lets
    # labels given to ``train`` pairs be written back to the file's rows (core.data.labels).
    train_rows: np.ndarray | None = None
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

    @cached_property
    def fingerprint(self) -> str:
        """A digest of the pairs (every split's features and labels, and the class names): runs
        resume only on data with the same fingerprint."""
        h = hashlib.blake2b(digest_size=16)
        h.update("\0".join(self.class_names).encode())
        for name in SPLITS:
            s = self.split(name)
            for a in (s.audio, s.visual, s.labels):
                h.update(f"{name}{a.dtype}{a.shape}".encode())
                # features left on disk are hashed chunk by chunk: the same bytes, the same digest
                for chunk in a.chunks() if hasattr(a, "chunks") else (a,):
                    h.update(np.ascontiguousarray(chunk).data)
        return h.hexdigest()


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


def load_h5(
    path: str | Path, val_fraction: float = 0.1, seed: int = 0, lazy_train: bool = False
) -> AVDataset:
    """Load and validate a feature file; carve a seeded stratified val split if it has none.

    ``lazy_train`` leaves the train split's features in the file (``core.data.stream``'s
    ``DiskFeatures``, read on demand; their values are checked as they are first read whole),
    unless they are per-segment (3-D) or have segments beside them: those load whole. A val
    split carved from such a train split stays on disk too (evaluation embeds it in chunks).
    Labels, paths and the file's own val and test splits are always loaded.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: not a readable HDF5 file ({_first_line(e)})") from None
    with f:
        names = _class_names(f, path)
        raw = {
            s: (lazy_train and s == "train" and _lazy_split(f, s, path)) or read_split(f, s, path)
            for s in SPLITS
            if f"audio_{s}" in f or s != "val"
        }
        attrs = read_attrs(f, path)
    for key, default in (("segment_seconds", DEFAULT_SECONDS), ("frame_rate", 1.0)):
        positive_attr(attrs, key, default, str(path))  # a bad one is named now, not used later
    if not names:  # ids without names: as many classes as the largest id says, within reason
        _check_label_ids(raw, path)
    num_classes = (
        len(names) if names else 1 + max(int(s.labels.max(initial=-1)) for s in raw.values())
    )
    for s, split in raw.items():
        unlabelled = np.flatnonzero(split.labels == UNLABELLED)
        if s != "train" and len(unlabelled):
            raise DataError(
                f"{path}: lab_{s}[{unlabelled[0]}] is unlabelled ({len(unlabelled)} such rows); "
                f"{s} pairs must all be labelled (unlabelled pairs belong in train)"
            )
        bad = np.flatnonzero(
            ((split.labels < 0) & (split.labels != UNLABELLED)) | (split.labels >= num_classes)
        )
        if len(bad):
            raise DataError(
                f"{path}: lab_{s}[{bad[0]}] = {split.labels[bad[0]]} is out of range "
                f"0..{num_classes - 1} (or -1 for unlabelled)"
                + (" (class_names has that many entries)" if names else "")
            )
    if num_classes == 0:
        raise DataError(f"{path}: no labels and no class_names, so the classes are unknown")
    dims = {(s.audio.shape[1], s.visual.shape[1]) for s in raw.values()}
    if len(dims) > 1:
        raise DataError(f"{path}: feature dimensions differ between splits: {sorted(dims)}")
    carved = "val" not in raw
    train_rows = None
    if carved:  # from the labelled pairs only: model selection needs classes
        labelled = np.flatnonzero(raw["train"].labelled)
        _, held = stratified_split(raw["train"].labels[labelled], val_fraction, seed)
        held = labelled[held]
        train_rows = np.setdiff1d(np.arange(len(raw["train"])), held)
        raw["val"] = _keep_subset(raw["train"], held)  # on disk too when train is: 10 % of it
        raw["train"] = _keep_subset(raw["train"], train_rows)
    if not names:
        names = [str(c) for c in range(num_classes)]
    return AVDataset(
        train=raw["train"],
        val=raw["val"],
        test=raw["test"],
        class_names=tuple(names),
        val_carved=carved,
        train_rows=train_rows,
        source=str(path),
        attrs=attrs,
    )


# What an install holds (the packages and their shipped resources): never a place for the user's
# files, even when it is writable (a user's site-packages, a checkout).
_INSTALLED = tuple(
    Path(__file__).resolve().parents[2] / name for name in ("core", "avexplorer", "resources")
)


def user_may_write(folder: str | Path) -> bool:
    """Whether the user's own files (saved labels, named selections) may go in ``folder``: it is
    a writable folder and not inside the installed package (where the demo's features are)."""
    folder = Path(folder).resolve()
    if any(folder.is_relative_to(root) for root in _INSTALLED):
        return False
    return folder.is_dir() and os.access(folder, os.W_OK)


def absolute_clip_path(path: str, data: AVDataset) -> str:
    """Where the clip a feature file of ``data`` names as ``path`` is, as an absolute path.

    A copy of the data written elsewhere (saved labels, a retrain's file, a selection exported as
    a feature file) must still find its clips, but a relative path means nothing from the copy's
    folder: the demo's are relative to its clip folder (``attrs["clips_dir"]``), others to the
    folder the app runs in, as the loaders read paths as written. So every copy writes them
    absolute (``""``, no clip, stays as it is).
    """
    if not path or Path(path).is_absolute():
        return path
    base = data.attrs.get("clips_dir")
    return str(Path(base) / path if base else Path(path).absolute())


def with_absolute_clip_paths(data: AVDataset) -> AVDataset:
    """``data`` with every split's clip paths made absolute (``absolute_clip_path``)."""

    def absolute(split: Split) -> Split:
        if split.paths is None:
            return split
        return replace(split, paths=tuple(absolute_clip_path(p, data) for p in split.paths))

    return replace(
        data, train=absolute(data.train), val=absolute(data.val), test=absolute(data.test)
    )


def save_h5(path: str | Path, data: AVDataset, include_val: bool = True) -> None:
    """Write a dataset in the lineage layout (atomically: temp file, then rename)."""
    with atomic_path(path) as tmp, open_h5(tmp) as f:
        for s in SPLITS:
            if s == "val" and not include_val:
                continue
            write_split(f, s, data.split(s))
        f.create_dataset(
            "class_names", data=np.array(data.class_names, dtype=object), dtype=h5py.string_dtype()
        )
        for k, v in data.attrs.items():
            f.attrs[k] = v


def write_split(f: h5py.File, name: str, split: Split) -> None:
    for key, x in ((f"audio_{name}", split.audio), (f"visual_{name}", split.visual)):
        if not np.isfinite(x).all():  # the one writer of feature files never writes NaN
            row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
            raise DataError(f"not written: {key}[{row}] holds NaN or infinite values")
    f.create_dataset(f"audio_{name}", data=split.audio.astype(np.float32))
    f.create_dataset(f"visual_{name}", data=split.visual.astype(np.float32))
    f.create_dataset(f"lab_{name}", data=split.labels.astype(np.int64))
    if split.paths is not None:
        f.create_dataset(
            f"path_{name}", data=np.array(split.paths, dtype=object), dtype=h5py.string_dtype()
        )
    if split.segments is not None:
        seg = split.segments
        for modality, x in (("audio", seg.audio), ("visual", seg.visual)):
            if x is not None:
                f.create_dataset(f"{modality}_seg_{name}", data=x.astype(np.float32))
        f.create_dataset(f"seg_count_{name}", data=seg.count.astype(np.int64))
        f.attrs["segment_seconds"] = str(seg.seconds)


def _class_names(f: h5py.File, path: Path) -> list[str]:
    if "class_names" not in f:
        return []
    raw = _read(f, "class_names", path)
    if raw.ndim > 1:
        raise DataError(f"{path}: class_names must be [C] names, found shape {raw.shape}")
    names = _texts(np.atleast_1d(raw), "class_names", path)
    if not names:
        raise DataError(f"{path}: class_names is empty; leave it out to number the classes")
    if len(set(names)) != len(names):
        raise DataError(f"{path}: class_names has duplicate entries")
    return names


def _keep_subset(split: Split, index: np.ndarray) -> Split:
    """``split.subset(index)``, with features left on disk kept there."""
    if not hasattr(split.audio, "subset"):
        return split.subset(index)
    paths = tuple(split.paths[i] for i in index) if split.paths is not None else None
    return Split(split.audio.subset(index), split.visual.subset(index), split.labels[index], paths)


def _lazy_split(f: h5py.File, s: str, path: Path) -> Split | None:
    """The split with its 2-D features left on disk; None when they must load whole (or are
    malformed: ``read_split`` then says how)."""
    from core.data.stream import DiskFeatures  # it reads through this module's errors

    keys = (f"audio_{s}", f"visual_{s}")
    if any(k in f for k in (f"audio_seg_{s}", f"visual_seg_{s}", f"seg_count_{s}")):
        return None
    for key in keys:
        link = f.get(key, getlink=True)
        if link is None or isinstance(link, h5py.ExternalLink):
            return None
        ds = f.get(key)
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 2:
            return None
        if not (ds.dtype == np.uint8 or np.issubdtype(ds.dtype, np.number)):
            return None
        if np.issubdtype(ds.dtype, np.complexfloating) or 0 in ds.shape[1:]:
            return None  # refused by read_split, naming the field
    if f"lab_{s}" not in f:
        return None
    labels = _labels(f, f"lab_{s}", path)
    n = {k: len(f[k]) for k in keys} | {f"lab_{s}": len(labels)}
    if len(set(n.values())) > 1:
        raise DataError(f"{path}: lengths differ: " + ", ".join(f"{k}={v}" for k, v in n.items()))
    return Split(
        DiskFeatures(path, keys[0]),  # type: ignore[arg-type]
        DiskFeatures(path, keys[1]),  # type: ignore[arg-type]
        labels,
        _paths(f, s, path, len(labels)),
    )


def _paths(f: h5py.File, s: str, path: Path, n: int) -> tuple[str, ...] | None:
    if f"path_{s}" not in f:
        return None
    paths = tuple(_texts(np.atleast_1d(_read(f, f"path_{s}", path)), f"path_{s}", path))
    if len(paths) != n:
        raise DataError(f"{path}: path_{s} has {len(paths)} entries, lab_{s} has {n}")
    return paths


def read_split(f: h5py.File, s: str, path: Path) -> Split:
    """One split of an open feature file, read and checked as ``load_h5`` reads it."""
    for key in (f"audio_{s}", f"visual_{s}", f"lab_{s}"):
        if key not in f:
            raise DataError(f"{path}: missing dataset {key!r} (found: {_some(sorted(f))})")
    audio, audio_seg = _features(f, f"audio_{s}", path)
    visual, visual_seg = _features(f, f"visual_{s}", path)
    labels = _labels(f, f"lab_{s}", path)
    n = {
        f"audio_{s}": len(audio if audio is not None else audio_seg),  # type: ignore[arg-type]
        f"visual_{s}": len(visual if visual is not None else visual_seg),  # type: ignore[arg-type]
        f"lab_{s}": len(labels),
    }
    if len(set(n.values())) > 1:
        raise DataError(f"{path}: lengths differ: " + ", ".join(f"{k}={v}" for k, v in n.items()))
    paths = _paths(f, s, path, len(labels))
    segments = _segments(f, s, path, len(labels), audio_seg, visual_seg)
    if segments is not None:  # per-second files: the clip vector is the mean of its segments
        if audio is None:
            audio = masked_mean(segments.audio, segments.count)  # type: ignore[arg-type]
        if visual is None:
            visual = masked_mean(segments.visual, segments.count)  # type: ignore[arg-type]
    return Split(audio, visual, labels, paths, segments)  # type: ignore[arg-type]


def _segments(
    f: h5py.File,
    s: str,
    path: Path,
    n: int,
    audio: np.ndarray | None,
    visual: np.ndarray | None,
) -> Segments | None:
    """The split's segments: 3-D clip features, or ours beside 2-D ones; None without either."""
    if audio is None and f"audio_seg_{s}" in f:
        audio = _segment_array(f, f"audio_seg_{s}", path)
    if visual is None and f"visual_seg_{s}" in f:
        visual = _segment_array(f, f"visual_seg_{s}", path)
    if audio is None and visual is None:
        return None
    arrays = {k: x for k, x in (("audio", audio), ("visual", visual)) if x is not None}
    if len({x.shape[:2] for x in arrays.values()} | {(n, x.shape[1]) for x in arrays.values()}) > 1:
        shapes = ", ".join(f"{k} {x.shape}" for k, x in arrays.items())
        raise DataError(f"{path}: {s} segments must be [{n}, T, D] alike, found {shapes}")
    t = next(iter(arrays.values())).shape[1]
    if f"seg_count_{s}" in f:
        count = _whole_numbers(_read(f, f"seg_count_{s}", path), f"seg_count_{s}", path)
        if count.shape != (n,):
            raise DataError(f"{path}: seg_count_{s} has shape {count.shape}, expected ({n},)")
        bad = np.flatnonzero((count < 1) | (count > t))
        if len(bad):
            raise DataError(
                f"{path}: seg_count_{s}[{bad[0]}] = {count[bad[0]]} is out of range 1..{t}"
            )
    else:  # per-second files without counts: every segment is real
        count = np.full(n, t, np.int64)
    seconds = positive_attr(read_attrs(f, path), "segment_seconds", DEFAULT_SECONDS, str(path))
    return Segments(audio, visual, count, seconds)


def _segment_array(f: h5py.File, key: str, path: Path) -> np.ndarray:
    x = _features(f, key, path)[1]
    if x is None:
        raise DataError(f"{path}: {key} must be a 3-D array [N, T, D]")
    return x


def _features(f: h5py.File, key: str, path: Path) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(clip-level [N, D], per-segment [N, T, D]): one of them, as the file stores it."""
    x = _read(f, key, path)
    if x.ndim not in (2, 3):
        raise DataError(
            f"{path}: {key} must be a 2-D array [N, D] or 3-D [N, T, D], found shape {x.shape}"
        )
    if 0 in x.shape[1:]:
        what = "features per pair" if x.shape[-1] == 0 else "segments"
        raise DataError(f"{path}: {key} has shape {x.shape}: 0 {what}")
    if np.iscomplexobj(x):  # a cast to float would drop the imaginary part without a word
        raise DataError(
            f"{path}: {key} holds complex numbers; store real features (e.g. magnitudes)"
        )
    if x.dtype == np.uint8:
        x = (x.astype(np.float32) - 128.0) / 256.0
    elif not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{path}: {key} has non-numeric dtype {x.dtype}")
    if x.dtype.itemsize > 4 and np.issubdtype(x.dtype, np.floating):
        with np.errstate(invalid="ignore"):
            big = np.abs(x) > np.finfo(np.float32).max
        if big.any():
            at = tuple(np.argwhere(big)[0])
            raise DataError(
                f"{path}: {key}[{', '.join(map(str, at))}] is {x[at]:g}, past the float32 range "
                "features are read in"
            )
    x = np.ascontiguousarray(x, dtype=np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        at = tuple(np.argwhere(bad)[0])
        rows = int(bad.reshape(len(x), -1).any(axis=1).sum())
        raise DataError(
            f"{path}: {key}[{', '.join(map(str, at))}] is {x[at]} (NaN/inf); {rows} rows affected"
        )
    return (x, None) if x.ndim == 2 else (None, x)


def _labels(f: h5py.File, key: str, path: Path) -> np.ndarray:
    y = np.asarray(_read(f, key, path))
    if y.ndim == 2 and y.shape[1] == 1:
        # A column of class ids (as a table export writes them), not a one-class one-hot: one
        # class cannot be retrieved by, and reading it as one-hot turned id 1 into 0 and the
        # other ids into "unlabelled".
        y = y[:, 0]
    if np.iscomplexobj(y):
        raise DataError(f"{path}: {key} holds complex numbers, not class ids")
    if y.ndim == 2 and y.shape[1] == 0:
        raise DataError(f"{path}: {key} has shape {y.shape}: one-hot rows of 0 classes")
    if y.ndim == 2:  # one-hot, as some lineage files store it; an all-zero row is unlabelled
        ones = y.sum(axis=1)
        if not np.isin(y, (0, 1)).all() or (ones > 1).any():
            bad = np.flatnonzero(~np.isin(y, (0, 1)).all(axis=1) | (ones > 1))[0]
            raise DataError(
                f"{path}: {key}[{bad}] is not one-hot (each row needs a single 1, "
                "or all zeros for an unlabelled pair)"
            )
        return np.where(ones == 1, y.argmax(axis=1), UNLABELLED).astype(np.int64)
    if y.ndim != 1:
        raise DataError(
            f"{path}: {key} must be [N] class ids or [N, C] one-hot, found shape {y.shape}"
        )
    return _whole_numbers(y, key, path)


# Class ids and counts past this are no ids a file can use, and a cast to int64 would wrap them
# (an unsigned 2**64 - 1 became -1, "unlabelled"); float ids are exact only below 2**53.
_LARGEST_ID = 2**53


def _whole_numbers(y: np.ndarray, key: str, path: Path) -> np.ndarray:
    """[N] int64 of an array of whole numbers (integer or integral float), checked before the
    cast so that no value wraps or rounds into another."""
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.bool_) or not (
        np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)
    ):
        raise DataError(f"{path}: {key} has non-numeric dtype {y.dtype}")
    if np.issubdtype(y.dtype, np.floating):
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.flatnonzero(bad.reshape(len(y), -1).any(axis=1))[0]) if y.ndim else 0
            raise DataError(
                f"{path}: {key}[{i}] is not a whole number; {key} holds non-integer values"
            )
    if y.size:
        with np.errstate(invalid="ignore"):
            far = (y > _LARGEST_ID) | (y < -_LARGEST_ID)
        if far.any():
            i = int(np.flatnonzero(far.reshape(len(y), -1).any(axis=1))[0]) if y.ndim else 0
            raise DataError(
                f"{path}: {key}[{i}] = {y.reshape(len(y), -1)[i][0]} is far past any id or count"
            )
    return y.astype(np.int64)


def _read(f: h5py.File, key: str, path: Path) -> np.ndarray:
    """The array stored at ``key``: every read of a feature file goes through here, so a group,
    a link to another file or an unreadable dataset is one ``DataError`` naming the key."""
    link = f.get(key, getlink=True)
    if link is None:
        raise DataError(f"{path}: missing dataset {key!r}")
    if isinstance(link, h5py.ExternalLink):
        raise DataError(f"{path}: {key} is a link to another file ({link.filename}); not followed")
    try:
        ds = f[key]
    except (KeyError, OSError) as e:
        raise DataError(f"{path}: {key} cannot be opened ({_first_line(e)})") from None
    if not isinstance(ds, h5py.Dataset):
        raise DataError(f"{path}: {key} must be an array (a dataset), found a group")
    try:
        return ds[()]
    except (OSError, ValueError, TypeError) as e:
        raise DataError(f"{path}: {key} cannot be read ({_first_line(e)})") from None


def read_texts(f: h5py.File, key: str, path: Path) -> list[str]:
    """A [N] dataset of UTF-8 text (paths, names), checked as the loader checks its own."""
    raw = _read(f, key, path)
    if raw.ndim != 1:
        raise DataError(f"{path}: {key} must be [N] text, found shape {raw.shape}")
    return _texts(raw, key, path)


def read_ids(f: h5py.File, key: str, path: Path) -> np.ndarray:
    """A [N] dataset of whole numbers (ids, indices) as int64, none wrapped or rounded."""
    y = _whole_numbers(_read(f, key, path), key, path)
    if y.ndim != 1:
        raise DataError(f"{path}: {key} must be [N] whole numbers, found shape {y.shape}")
    return y


def read_vectors(f: h5py.File, key: str, path: Path) -> np.ndarray:
    """A [N, D] float32 feature dataset, checked as ``load_h5`` checks clip features."""
    x, segments = _features(f, key, path)
    if x is None:
        raise DataError(f"{path}: {key} must be a 2-D array [N, D], found shape {segments.shape}")
    return x


def _texts(raw: np.ndarray, key: str, path: Path) -> list[str]:
    """The strings of a 1-D text dataset, each checked to be UTF-8 (the file's text encoding)."""
    out = []
    for i, x in enumerate(raw):
        if isinstance(x, bytes):
            try:
                x = x.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path}: {key}[{i}] is not UTF-8 text") from None
        elif isinstance(x, np.ndarray):
            raise DataError(f"{path}: {key} must be [N] text, found nested arrays")
        out.append(str(x))
    return out


def read_attrs(f: h5py.File, path: Path) -> dict[str, str]:
    """The file's attributes as text; an attribute that cannot be read or decoded is named."""
    out = {}
    for key in f.attrs:
        try:
            value = f.attrs[key]
        except (OSError, TypeError, ValueError) as e:
            raise DataError(f"{path}: attribute {key} cannot be read ({_first_line(e)})") from None
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path}: attribute {key} is not UTF-8 text") from None
        out[str(key)] = str(value)
    return out


def positive_attr(attrs: dict[str, str], key: str, default: float, where: str) -> float:
    """A positive number stored as text in ``attrs`` (a feature file's, or the checkpoint's copy
    of them): ``segment_seconds``, ``frame_rate``. One checked reader, so that "nan" or "-1"
    is one line naming the attribute rather than one frame per clip or a crash later."""
    text = attrs.get(key)
    if text is None:
        return default
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise DataError(f"{where}: attribute {key} = {str(text)[:40]!r} is not a positive number")
    return value


def _some(names: list[str], limit: int = 8) -> str:
    """A few names and how many more: a file with thousands of keys still gives one short line."""
    shown = ", ".join(n[:60] for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _check_label_ids(raw: dict[str, Split], path: Path) -> None:
    """Without class_names the ids themselves say how many classes there are; an id past the
    file's number of pairs cannot be a class (and would make that many names)."""
    limit = sum(len(s) for s in raw.values())
    for name, split in raw.items():
        bad = np.flatnonzero(split.labels >= limit)
        if len(bad):
            raise DataError(
                f"{path}: lab_{name}[{bad[0]}] = {split.labels[bad[0]]} is far past the class "
                f"ids a file of {limit} pairs can use (no class_names dataset names the classes)"
            )
