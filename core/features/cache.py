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
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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

    def get(self, digest: str, key: str) -> CacheEntry | None:
        path = self._path(digest, key)
        try:
            with np.load(path, allow_pickle=False) as z:
                vector = z["vector"] if "vector" in z.files else None
                note = str(z["note"]) if "note" in z.files else None
                duration = float(z["duration"]) if "duration" in z.files else None
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, EOFError):  # damaged entry: encode again
            return None
        if vector is None and note is None:
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
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except OSError:  # a read-only or full cache must not stop extraction
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
