"""Run folders: who may write one, and when a folder may be (re)used.

Every front end (the CLI, the app's training process, a script) reaches a run folder through
``open_run_dir``, called by ``core.training.loop.train``, so the same rules hold everywhere:

- one writer at a time: the folder is locked (an OS lock on the folder itself, released by the
  kernel when the process ends, even on a crash) for as long as the run writes it. Locking the
  folder rather than a file in it means there is no lock file that a clean-up could delete while
  the run goes on, which let a second run in to wipe it;
- a new run starts in an empty (or new) folder; a folder holding anything else is refused unless
  the caller asks to overwrite, and then only the run's own files are removed (a front end's
  record of the run it is starting, ``RECORD_FILES``, may already be there: training never
  writes those);
- a resumed run continues in the folder of the checkpoint it resumes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import filelock

try:  # POSIX: flock on the folder's own descriptor
    import fcntl
except ImportError:  # Windows: a lock file, filelock's own mechanism
    fcntl = None  # type: ignore[assignment]

from core.atomic import WriteError, prepare_folder, remove_stale_temps
from core.errors import UserError

LOCK_NAME = ".avexplorer.lock"  # the lock file where folders cannot be locked (and of old runs)
# What a run writes; --force removes exactly these, never a user's other files.
RUN_FILES = ("config.json", "history.jsonl", "model.pt", "last.pt")
# What the app keeps beside a run (avexplorer/run_records.py), written before the run starts.
RECORD_FILES = ("run.json", "steps.npz")


class RunDirError(UserError):
    """A run folder that cannot be used for this run; the message says why and what to do."""


class RunDir:
    """A locked run folder; ``close()`` (or the end of the process) releases it."""

    def __init__(self, path: Path, lock: Any) -> None:
        self.path = path
        self._lock = lock

    def close(self) -> None:
        self._lock.release()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_run_dir(
    path: str | Path, *, resume_from: str | Path | None = None, overwrite: bool = False
) -> RunDir:
    """Create (if need be) and lock the run folder ``path``, checking that this run may use it.

    A new run (``resume_from`` None) needs an empty folder, or ``overwrite`` (its old run files
    are then removed). A resumed run needs its checkpoint to lie in ``path`` (or an empty
    ``path``, to continue a copy elsewhere).
    """
    path = Path(path)
    try:
        prepare_folder(path, "run folder")
    except WriteError as e:
        raise RunDirError(str(e)) from None
    lock = _FolderLock(path) if fcntl is not None else _FileLock(path)
    try:
        taken = lock.acquire()
    except OSError as e:
        raise RunDirError(f"{path}: cannot lock this run folder ({e.strerror or e})") from None
    if not taken:
        raise RunDirError(
            f"{path}: another run is writing this folder; wait for it to end or choose another "
            "--out"
        )
    try:
        # Holding the lock, no one else writes here: a temporary file of a run file is left from
        # a run killed mid-save (an 11 MB checkpoint, say), never one being written.
        for name in RUN_FILES:
            remove_stale_temps(path / name, any_owner=True)
        _check_contents(path, resume_from, overwrite)
    except BaseException:
        lock.release()
        raise
    return RunDir(path, lock)


class _FolderLock:
    """An exclusive ``flock`` on the folder's descriptor (not inherited by started programs)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except OSError:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


class _FileLock:
    def __init__(self, path: Path) -> None:
        self._lock = filelock.FileLock(path / LOCK_NAME, timeout=0)

    def acquire(self) -> bool:
        try:
            self._lock.acquire()
        except filelock.Timeout:
            return False
        return True

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()


def _check_contents(path: Path, resume_from: str | Path | None, overwrite: bool) -> None:
    present = sorted(p.name for p in path.iterdir() if p.name != LOCK_NAME)
    if not set(present) - set(RECORD_FILES):
        return
    if resume_from is not None:
        if Path(resume_from).resolve().parent == path.resolve():
            return
        raise RunDirError(
            f"{path}: not empty, and not the folder of {resume_from}; resume into the "
            "checkpoint's own folder or an empty one"
        )
    if overwrite:
        _remove_run_files(path, present)
        return
    if "last.pt" in present:
        raise RunDirError(
            f"{path}: already holds a run; pass --resume to continue it, --force to replace it, "
            "or choose another --out"
        )
    raise RunDirError(
        f"{path}: not empty (holds {_names(present)}); choose a new or empty --out, or pass "
        "--force to start a run there"
    )


def _remove_run_files(path: Path, present: Iterable[str]) -> None:
    for name in present:
        if name in RUN_FILES:
            try:
                (path / name).unlink()
            except OSError as e:
                raise RunDirError(f"{path / name}: cannot remove it ({e.strerror or e})") from None


def _names(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
