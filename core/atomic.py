"""Atomic file writes: the one way core and the front ends write a file a user keeps.

A file is written under a temporary name in its own folder and renamed over the target only once
it is complete and on disk. A reader therefore sees the old file or the new one, never half of
one; a write that fails (disk full, read-only folder, an error in the writer) leaves the old file
as it was and removes the temporary one.

    with atomic_write(run_dir / "history.jsonl", "w") as f:
        f.write(text)
    with atomic_path(out / "features.h5") as tmp:  # for writers that want a path (h5py)
        write_h5(tmp)
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from core.errors import UserError


class WriteError(UserError, OSError):
    """A file could not be written; the previous file at that path (if any) is unchanged."""


def prepare_folder(folder: str | Path, what: str = "folder") -> Path:
    """Create ``folder`` (and its parents) or say in one line why it cannot be."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise WriteError(f"{folder}: is a file, not a {what}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(f"{folder}: cannot create this {what} ({_reason(e)})") from None
    return folder


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path``; renamed onto ``path`` when the block ends without error.

    OS errors (inside the block or in the rename) become a ``WriteError`` naming ``path``; any
    failure removes the temporary file.
    """
    path = Path(path)
    if path.is_dir():
        raise WriteError(f"{path}: is a folder, cannot write a file there")
    prepare_folder(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        # Created here (not by mkstemp) so that the final file gets the usual umask permissions.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        if isinstance(e, WriteError):
            raise
        raise WriteError(
            f"{path}: could not be written ({_reason(e)}); any previous file there is unchanged"
        ) from None
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def atomic_write(
    path: str | Path, mode: str = "wb", *, sync: bool = True, **kwargs: Any
) -> Iterator[IO[Any]]:
    """An open file that becomes ``path`` only when the block ends without error (synced first,
    so a crash right after the rename cannot leave an empty file; ``sync=False`` skips that for
    files that can be made again, such as cache entries)."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f
        if sync:
            f.flush()
            os.fsync(f.fileno())


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _reason(e: OSError) -> str:
    return e.strerror or str(e) or type(e).__name__
