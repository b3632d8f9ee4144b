"""Feature cache: one small .npz per (file content hash, encoder key).

Keyed by content (blake2b of the bytes), not by path or mtime, so renaming or moving a folder keeps
its cache and an edited file is encoded again. Each entry is written to a temporary file in the
same directory and renamed into place: a rename is atomic, so two processes encoding the same clip
at once both write complete files and readers never see half of one. An entry without a
vector records that a modality is absent (no audio track, too short), so re-runs do not decode
such clips again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.atomic import atomic_write

_CHUNK = 1 << 20


def file_digest(path: str | Path) -> str:
    """Hex blake2b-160 of the file's bytes."""
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/avexplorer/features`` (``~/.cache/...`` when the variable is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "avexplorer" / "features"


@dataclass(frozen=True)
class CacheEntry:
    vector: np.ndarray | None  # [D] float32, or None when the modality is missing
    note: str | None = None  # why it is missing (or how it was adapted, e.g. padded)
    duration: float | None = None


class FeatureCache:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def _path(self, digest: str, key: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)
        return self.root / safe / digest[:2] / f"{digest}.npz"

    def get(
        self, digest: str, key: str, dim: int | None = None, segments: bool = False
    ) -> CacheEntry | None:
        """The entry, or None when there is none or it cannot be trusted (damaged, not finite,
        not ``dim`` wide, or not the shape asked for: a [D] clip vector, or with ``segments`` a
        [S, D] matrix): the caller then encodes the clip again."""
        path = self._path(digest, key)
        try:
            with open(path, "rb") as fh:
                z = np.load(fh, allow_pickle=False)
                if not isinstance(z, np.lib.npyio.NpzFile):  # a bare array: not ours
                    return None
                with z:
                    vector = z["vector"] if "vector" in z.files else None
                    note = _text(z["note"]) if "note" in z.files else None
                    duration = _seconds(z["duration"]) if "duration" in z.files else None
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile):
            return None  # a damaged entry
        if vector is None and note is None:
            return None
        if vector is not None and not _usable(vector, dim, 2 if segments else 1):
            return None
        return CacheEntry(vector, note, duration)

    def put(self, digest: str, key: str, entry: CacheEntry) -> None:
        path = self._path(digest, key)
        arrays: dict[str, np.ndarray] = {}
        if entry.vector is not None:
            arrays["vector"] = np.asarray(entry.vector, dtype=np.float32)
        if entry.note is not None:
            arrays["note"] = np.array(entry.note)
        if entry.duration is not None:
            arrays["duration"] = np.array(entry.duration, dtype=np.float64)
        if "vector" in arrays and not _usable(arrays["vector"], None, arrays["vector"].ndim):
            return  # never keep NaN features: the next run encodes the clip again
        # A read-only or full cache must not stop extraction.
        with contextlib.suppress(OSError), atomic_write(path, sync=False, tidy=False) as f:
            np.savez(f, **arrays)


def _text(x: np.ndarray) -> str:
    if x.ndim != 0 or x.dtype.kind != "U":
        raise ValueError("a note is one string")
    return str(x)


def _seconds(x: np.ndarray) -> float:
    if x.ndim != 0 or x.dtype.kind not in "fiu" or not np.isfinite(x) or x < 0:
        raise ValueError("a duration is one number of seconds")
    return float(x)


def _usable(vector: np.ndarray, dim: int | None, ndim: int) -> bool:
    """A stored clip vector ([D], ``ndim`` 1) or segment matrix ([S, D], ``ndim`` 2) that
    features can be made of; a matrix where a vector belongs would be written out as 3-D data."""
    return (
        vector.ndim == ndim
        and ndim in (1, 2)
        and vector.size > 0
        and np.issubdtype(vector.dtype, np.floating)
        and (dim is None or vector.shape[-1] == dim)
        and bool(np.isfinite(vector).all())
    )
