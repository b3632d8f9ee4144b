"""Train features read from the HDF5 file as training needs them, for splits past memory.

A split opened with ``load_h5(..., lazy_train=True)`` keeps its labels (and clip paths) in memory
and its features on disk as ``DiskFeatures``: an [N, D] array whose rows are read when asked for,
sorted, in one h5py selection per call (h5py reads an increasing row list far faster than row by
row). Training reads them through ``BatchFeed``: a background thread reads the rows of the next
group of steps while the model trains on the current one, so at most two groups of batches are in
memory whatever the file's size. Which rows a step needs is a pure function of (seed, epoch, step)
(core/training/batches.py), so a resumed run, or each process under ``torchrun``, reads exactly the
rows of its own steps, and nothing else.

The batch sampler draws its shuffle from windows of a few dozen contiguous blocks of the file
(``core.training.batches.shuffled``), so the rows a group of steps needs lie in a few dozen runs
of the file, and reads stay close to sequential.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np

from core.data.errors import DataError

# Rows read per h5py call when a whole split is walked (statistics, a scan, a fingerprint): 16k
# rows of 1,152 float32 is 74 MB, large enough that the per-call cost vanishes.
CHUNK_ROWS = 16_384


class DiskFeatures:
    """[N, D] float32 rows of one dataset of an HDF5 file, read on demand.

    ``rows`` (increasing file rows) makes it a subset of the file's split, as when val is carved
    from train. uint8 features are dequantised as ``load_h5`` does. Each process (and each fork)
    opens the file for itself; ``rows_read`` and ``reads`` count what this object read.
    """

    def __init__(self, path: str | Path, key: str, rows: np.ndarray | None = None):
        self.path, self.key = Path(path), key
        with h5py.File(self.path, "r") as f:
            ds = f[key]
            n, dim = ds.shape
            self._uint8 = ds.dtype == np.uint8
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.shape = (n if self.rows is None else len(self.rows), int(dim))
        self.dtype = np.dtype(np.float32)
        self.ndim = 2
        self.rows_read = 0
        self.reads = 0
        self._lock = threading.Lock()
        self._file: h5py.File | None = None
        self._pid = -1

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.shape[1] * 4

    def subset(self, positions: np.ndarray) -> DiskFeatures:
        """The rows at increasing ``positions``, still on disk."""
        positions = np.asarray(positions, dtype=np.int64)
        rows = positions if self.rows is None else self.rows[positions]
        return DiskFeatures(self.path, self.key, rows)

    def __getitem__(self, index: slice | np.ndarray | int) -> np.ndarray:
        if isinstance(index, slice):
            return self.read(np.arange(*index.indices(len(self)))).reshape(-1, self.shape[1])
        if np.isscalar(index):
            return self.read(np.array([int(index)]))[0]  # type: ignore[arg-type]
        return self.read(np.asarray(index))

    def read(self, positions: np.ndarray) -> np.ndarray:
        """[len(positions), D] float32: the rows at ``positions`` (any order, repeats allowed)."""
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        out = np.empty((len(positions), self.shape[1]), np.float32)
        if not len(positions):
            return out
        if positions.min() < -len(self) or positions.max() >= len(self):
            raise IndexError(f"row index out of range for {len(self)} rows")
        positions = positions % len(self)
        increasing = bool((np.diff(positions) > 0).all())
        wanted, back = (
            (positions, None) if increasing else np.unique(positions, return_inverse=True)
        )
        rows = wanted if self.rows is None else self.rows[wanted]
        got = out if back is None else np.empty((len(rows), self.shape[1]), np.float32)
        for s in range(0, len(rows), CHUNK_ROWS):
            part = rows[s : s + CHUNK_ROWS]
            got[s : s + len(part)] = self._read_rows(part)
        if back is not None:
            out[:] = got[back]
        return out

    def chunks(self, size: int = CHUNK_ROWS) -> Iterator[np.ndarray]:
        """The whole array in order, ``size`` rows at a time, each checked to hold finite numbers
        (the check ``load_h5`` makes of the features it loads)."""
        for s in range(0, len(self), size):
            yield self.checked(s, s + size)

    def checked(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop``; a ``DataError`` naming the first value that is not finite."""
        x = self[start:stop]
        bad = ~np.isfinite(x)
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            rows = int(bad.any(axis=1).sum())
            raise DataError(
                f"{self.path}: {self.key}[{self._file_row(start + row)}, {col}] is "
                f"{x[row, col]} (NaN/inf, or past the float32 range); {rows} rows affected in rows "
                f"{start}..{start + len(x) - 1}"
            )
        return x

    def _file_row(self, position: int) -> int:
        return position if self.rows is None else int(self.rows[position])

    def load(self) -> np.ndarray:
        """The whole array in memory (checked as ``chunks`` checks it)."""
        out = np.empty(self.shape, np.float32)
        for s, x in zip(range(0, len(self), CHUNK_ROWS), self.chunks(), strict=True):
            out[s : s + len(x)] = x
        return out

    def _read_rows(self, rows: np.ndarray) -> np.ndarray:
        """Increasing file rows, as float32."""
        with self._lock:
            ds = self._dataset()
            try:
                if rows[-1] - rows[0] + 1 == len(rows):  # contiguous: one slab
                    x = ds[int(rows[0]) : int(rows[-1]) + 1]
                else:
                    x = ds[rows]
            except (OSError, ValueError, TypeError) as e:
                raise DataError(f"{self.path}: {self.key} cannot be read ({e})") from None
            self.reads += 1
            self.rows_read += len(rows)
        if self._uint8:
            return (x.astype(np.float32) - 128.0) / 256.0
        with np.errstate(over="ignore", invalid="ignore"):  # named by ``checked``, not warned
            return np.asarray(x, dtype=np.float32)

    def _dataset(self) -> h5py.Dataset:
        if self._file is None or self._pid != os.getpid():  # a forked child opens its own
            try:
                self._file = h5py.File(self.path, "r")
            except OSError as e:
                raise DataError(f"{self.path}: cannot be reopened ({e})") from None
            self._pid = os.getpid()
        return self._file[self.key]

    def close(self) -> None:
        with self._lock:
            if self._file is not None and self._pid == os.getpid():
                self._file.close()
            self._file = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"], state["_lock"], state["_pid"] = None, None, -1
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def is_on_disk(x: object) -> bool:
    return isinstance(x, DiskFeatures)


def column_sums(x: np.ndarray | DiskFeatures, part: int = 0, parts: int = 1) -> np.ndarray:
    """[3, D] float64: the rows counted, their sum and their sum of squares, over the chunks
    ``part``, ``part + parts``, ... of ``x`` (each process under torchrun sums its share; the
    shares add up to the whole). Features on disk are checked as ``chunks`` checks them."""
    n, dim = x.shape
    out = np.zeros((3, dim), np.float64)
    for i, start in enumerate(range(0, n, CHUNK_ROWS)):
        if i % parts != part:
            continue
        if isinstance(x, DiskFeatures):
            chunk = x.checked(start, start + CHUNK_ROWS)
        else:
            chunk = x[start : start + CHUNK_ROWS]
        c = np.asarray(chunk, np.float64)
        out[0] += len(c)
        out[1] += c.sum(axis=0)
        out[2] += (c * c).sum(axis=0)
    return out


def moments(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and unbiased std from ``column_sums`` (float64 keeps the difference of
    the sums exact enough for features with a common offset)."""
    n = max(float(sums[0, 0]), 1.0)
    mean = sums[1] / n
    var = np.maximum(sums[2] - n * mean * mean, 0.0) / max(n - 1.0, 1.0)
    return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


def column_moments(x: np.ndarray | DiskFeatures) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and (unbiased) std of ``x``, read in chunks: bounded memory."""
    return moments(column_sums(x))


class BatchFeed:
    """The features of each step's rows, read ahead by one thread, ``group`` steps at a time.

    ``positions(g)`` gives the train positions global step ``g`` needs (this process's share of
    its batch); it must be a pure function of ``g``. Reading a group as one sorted selection
    keeps the reads in file order; holding at most the group in use and the next one bounds the
    memory at two groups' rows.
    """

    def __init__(
        self,
        audio: DiskFeatures,
        visual: DiskFeatures,
        positions: Callable[[int], np.ndarray],
        total_steps: int,
        group: int,
    ):
        self.audio, self.visual = audio, visual
        self.positions, self.total_steps, self.group = positions, total_steps, max(1, group)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-feed")
        self._groups: dict[int, Future] = {}

    def batch(self, g: int) -> tuple[np.ndarray, np.ndarray]:
        """(audio, visual) rows of global step ``g``, in the order ``positions(g)`` gives."""
        k = g // self.group
        for old in [j for j in self._groups if j < k]:
            del self._groups[old]
        current = self._submit(k)
        if (k + 1) * self.group < self.total_steps:
            self._submit(k + 1)
        rows, audio, visual = current.result()
        at = np.searchsorted(rows, self.positions(g))
        return audio[at], visual[at]

    def _submit(self, k: int) -> Future:
        if k not in self._groups:
            self._groups[k] = self._pool.submit(self._read_group, k)
        return self._groups[k]

    def _read_group(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        steps = range(k * self.group, min((k + 1) * self.group, self.total_steps))
        rows = np.unique(np.concatenate([np.asarray(self.positions(g)) for g in steps]))
        return rows, self.audio.read(rows), self.visual.read(rows)

    def close(self) -> None:
        for f in self._groups.values():
            f.cancel()
        self._groups.clear()
        self._pool.shutdown(wait=True)


# "auto" streams train features past 1 GB: below it a run's memory is dominated by torch and the
# model anyway, and above it loading would cost more than the reads (docs/scaling.md).
AUTO_STREAM_MB = 1024.0


def streams(setting: str, nbytes: int) -> bool:
    """Whether train features of ``nbytes`` are streamed under ``data.stream_above_mb``."""
    limit = AUTO_STREAM_MB if setting == "auto" else float(setting)
    return nbytes > limit * 2**20
