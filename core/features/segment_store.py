"""Segment features on their way into a feature file, without holding a corpus of them in memory.

Extraction appends each usable clip's segments to a :class:`SegmentSpool` (a temporary HDF5 file
beside the output) as results stream in; once the splits are drawn, :func:`write_segments` copies
them clip by clip into ``audio_seg_{split}`` [N, T, Da], ``visual_seg_{split}`` [N, T, Dv] and
``seg_count_{split}`` [N], padded with zeros to the longest clip's count T.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from core.atomic import H5Sink, discard_h5, prepare_folder, remove_stale_temps, temp_name

SegmentRows = Callable[[int], tuple[np.ndarray, np.ndarray]]  # clip -> (audio [t, Da], visual)


class SegmentSpool:
    """Append-only store of ragged [t, D] segment arrays, two modalities, on disk."""

    def __init__(self, near: str | Path, audio_dim: int, visual_dim: int) -> None:
        near = Path(near)
        prepare_folder(near.parent)
        # named as a temporary file of "NAME.segments", so that one left by a killed extraction
        # is removed by the next (core/atomic.py)
        spool = near.with_name(f"{near.name}.segments")
        remove_stale_temps(spool)
        self.path = temp_name(spool)
        # through a Python file: a full disk is then an OSError, not a crash in HDF5's writer
        self._sink = H5Sink(self.path)
        self._f = h5py.File(self._sink, "w")
        self._audio = self._f.create_dataset(
            "audio", (0, audio_dim), np.float32, maxshape=(None, audio_dim), chunks=(256, audio_dim)
        )
        self._visual = self._f.create_dataset(
            "visual",
            (0, visual_dim),
            np.float32,
            maxshape=(None, visual_dim),
            chunks=(256, visual_dim),
        )
        self.starts: list[int] = []
        self.counts: list[int] = []

    def __len__(self) -> int:
        return len(self.counts)

    def append(self, audio: np.ndarray, visual: np.ndarray) -> int:
        """Store one clip's segments (both cut to the shorter count); return its position."""
        t = min(len(audio), len(visual))
        at = self._audio.shape[0]
        for ds, x in ((self._audio, audio), (self._visual, visual)):
            ds.resize(at + t, axis=0)
            ds[at : at + t] = x[:t]
        self.starts.append(at)
        self.counts.append(t)
        return len(self.counts) - 1

    def rows(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, t = self.starts[i], self.counts[i]
        return self._audio[a : a + t], self._visual[a : a + t]

    @property
    def longest(self) -> int:
        return max(self.counts, default=1)

    def close(self) -> None:
        discard_h5(self._f, self._sink)  # a spool is thrown away once its rows are written
        self._sink.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> SegmentSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_segments(
    f: h5py.File,
    split: str,
    clips: Sequence[int],
    rows: SegmentRows,
    t: int,
    dims: tuple[int, int],
) -> None:
    """Write ``clips`` (ids ``rows`` understands), in order, as the split's segment arrays."""
    n = len(clips)
    out = {
        m: f.create_dataset(
            f"{m}_seg_{split}",
            (n, t, d),
            np.float32,
            chunks=(1, t, d) if n else None,
            fillvalue=0.0,
        )
        for m, d in zip(("audio", "visual"), dims, strict=True)
    }
    count = np.zeros(n, np.int64)
    for row, clip in enumerate(clips):
        audio, visual = rows(clip)
        count[row] = len(audio)
        out["audio"][row, : len(audio)] = audio
        out["visual"][row, : len(visual)] = visual
    f.create_dataset(f"seg_count_{split}", data=count)


@dataclass(frozen=True)
class SegmentSource:
    """Where a file's segments come from: ``rows(id)`` for the clip at each listing index."""

    rows: SegmentRows
    ids: dict[int, int]  # listing index -> id understood by ``rows``
    t: int  # padded count (the longest clip's)
    dims: tuple[int, int]  # (Da, Dv)

    def write(self, f: h5py.File, split: str, listing_index: np.ndarray) -> None:
        clips = [self.ids[int(i)] for i in listing_index]
        write_segments(f, split, clips, self.rows, self.t, self.dims)


def shard_segments(parts: Sequence[h5py.File], index: Sequence[np.ndarray]) -> SegmentSource:
    """The train segments of open shard files, whose clips sit at listing positions ``index``."""
    where = [(k, r) for k, idx in enumerate(index) for r in range(len(idx))]
    ids = {int(index[k][r]): n for n, (k, r) in enumerate(where)}

    def rows(n: int) -> tuple[np.ndarray, np.ndarray]:
        k, r = where[n]
        t = int(parts[k]["seg_count_train"][r])
        return parts[k]["audio_seg_train"][r, :t], parts[k]["visual_seg_train"][r, :t]

    longest = max((int(f["seg_count_train"][()].max(initial=1)) for f in parts), default=1)
    first = parts[0]
    dims = (first["audio_seg_train"].shape[2], first["visual_seg_train"].shape[2])
    return SegmentSource(rows, ids, longest, dims)
