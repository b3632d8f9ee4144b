"""In-memory arrays as a dataset: what ``avexplorer.show`` opens without writing a feature file.

``dataset_from_arrays`` checks the arrays a notebook or a script hands over (numpy, torch, or
anything ``numpy.asarray`` reads) and makes them the test split of an ``AVDataset`` (train and
val are empty: the app explores them, it does not train on them). Bad input is refused with one
line naming the argument, the row and what is wrong, before any window opens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.data.dataset import AVDataset, Split
from core.errors import UserError


class ArrayError(UserError, ValueError):
    """Arrays that cannot be opened; the message names the argument and the row."""


def as_numpy(x: Any, name: str) -> np.ndarray:
    """A numpy array of ``x`` (a torch tensor is detached and moved to the CPU first)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as e:
        raise ArrayError(f"{name}: not an array ({e})") from None


def features(x: Any, name: str) -> np.ndarray:
    """[N, D] float32 with every value finite."""
    a = as_numpy(x, name)
    if a.ndim != 2:
        raise ArrayError(f"{name} must be a 2-D array [N, D], got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise ArrayError(f"{name} must hold real numbers, got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    bad = ~np.isfinite(a)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        rows = int(bad.any(axis=1).sum())
        raise ArrayError(f"{name}[{row}, {col}] is {a[row, col]} (NaN/inf); {rows} rows affected")
    return a


def class_ids(
    labels: Any, n: int, class_names: Sequence[str] | None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer class ids [n] and the class names: ints 0..C-1 as given, or names (strings),
    which become ids in the order of ``class_names`` (sorted when not given)."""
    y = as_numpy(labels, "labels")
    if y.ndim != 1:
        raise ArrayError(f"labels must be a 1-D array [N], got shape {y.shape}")
    if len(y) != n:
        raise ArrayError(f"labels has {len(y)} entries, audio and visual have {n} rows")
    if y.dtype.kind in "OUS":  # class names
        names = [str(v) for v in y]
        classes = list(class_names) if class_names is not None else sorted(set(names))
        index = {c: i for i, c in enumerate(classes)}
        for i, v in enumerate(names):
            if v not in index:
                raise ArrayError(f"labels[{i}] = {v!r} is not one of class_names")
        return np.array([index[v] for v in names], np.int64), tuple(classes)
    if y.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
        if len(bad):
            raise ArrayError(f"labels[{bad[0]}] = {y[bad[0]]} is not a class id (an integer)")
    elif y.dtype.kind not in "iub":
        raise ArrayError(f"labels must be class ids (integers) or names, got dtype {y.dtype}")
    y = y.astype(np.int64)
    count = len(class_names) if class_names is not None else int(y.max(initial=-1)) + 1
    bad = np.flatnonzero((y < 0) | (y >= count))
    if len(bad):
        where = f" ({count} class_names)" if class_names is not None else ""
        raise ArrayError(
            f"labels[{bad[0]}] = {y[bad[0]]} is out of range 0..{count - 1}{where}"
            if count
            else f"labels[{bad[0]}] = {y[bad[0]]} is negative"
        )
    if class_names is None:
        # Without names the classes are the ids 0..max; an id no clip carries would be a class
        # with nothing in it (in every legend, count and metric), so a gap is refused.
        missing = np.setdiff1d(np.arange(count), y)
        if len(missing):
            shown = ", ".join(str(int(c)) for c in missing[:5]) + (
                ", ..." if len(missing) > 5 else ""
            )
            raise ArrayError(
                f"labels: class ids run to {count - 1} but no clip has id {shown}; number the "
                f"classes 0..C-1 (or pass class_names to keep classes without clips)"
            )
    names = tuple(class_names) if class_names is not None else tuple(str(c) for c in range(count))
    if len(set(names)) != len(names):
        raise ArrayError("class_names has duplicate entries")
    return y, names


def strings(x: Any, n: int, name: str) -> tuple[str, ...] | None:
    if x is None:
        return None
    values = tuple(str(v) for v in as_numpy(x, name).reshape(-1)) if not isinstance(x, list) else x
    if len(values) != n:
        raise ArrayError(f"{name} has {len(values)} entries, audio and visual have {n} rows")
    return tuple(str(v) for v in values)


def dataset_from_arrays(
    audio: Any,
    visual: Any,
    labels: Any,
    paths: Any = None,
    class_names: Sequence[str] | None = None,
    title: str = "arrays",
) -> AVDataset:
    """The arrays as the test split of a dataset (train and val empty, of the same widths)."""
    a = features(audio, "audio")
    v = features(visual, "visual")
    if len(a) != len(v):
        raise ArrayError(f"audio has {len(a)} rows, visual has {len(v)}: one row per clip in each")
    if len(a) < 2:
        raise ArrayError(f"audio and visual have {len(a)} rows: at least 2 clips are needed")
    y, names = class_ids(labels, len(a), class_names)
    test = Split(a, v, y, strings(paths, len(a), "paths"))
    empty = Split(
        np.zeros((0, a.shape[1]), np.float32),
        np.zeros((0, v.shape[1]), np.float32),
        np.zeros(0, np.int64),
    )
    return AVDataset(empty, empty, test, names, attrs={"title": title})


def unit_rows(x: np.ndarray, name: str) -> np.ndarray:
    """Rows scaled to length 1 (embeddings are compared by cosine); a zero row is refused."""
    # einsum sums the squares row by row without the N x D temporary np.linalg.norm makes
    # (many times faster at a million rows)
    x = np.asarray(x, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    zero = np.flatnonzero(norms[:, 0] == 0)
    if len(zero):
        raise ArrayError(f"{name}[{zero[0]}] is all zeros: an embedding needs a direction")
    return (x / norms).astype(np.float32, copy=False)
