"""Run folders: who may write one, and when a folder may be (re)used.

Every front end (the CLI, the app's training process, a script) reaches a run folder through
``open_run_dir``, called by ``core.training.loop.train``, so the same rules hold everywhere:

- one writer at a time: the folder is locked (an OS file lock, released by the kernel when the
  process ends, even on a crash) for as long as the run writes it;
- a new run starts in an empty (or new) folder; a folder holding anything else is refused unless
  the caller asks to overwrite, and then only the run's own files are removed (a front end's
  record of the run it is starting, ``RECORD_FILES``, may already be there: training never
  writes those);
- a resumed run continues in the folder of the checkpoint it resumes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import filelock

from core.atomic import WriteError, prepare_folder, remove_stale_temps
from core.errors import UserError

LOCK_NAME = ".avexplorer.lock"
# What a run writes; --force removes exactly these, never a user's other files.
RUN_FILES = ("config.json", "history.jsonl", "model.pt", "last.pt")
# What the app keeps beside a run (avexplorer/run_records.py), written before the run starts.
RECORD_FILES = ("run.json", "steps.npz")


class RunDirError(UserError):
    """A run folder that cannot be used for this run; the message says why and what to do."""


class RunDir:
    """A locked run folder; ``close()`` (or the end of the process) releases it."""

    def __init__(self, path: Path, lock: filelock.BaseFileLock) -> None:
        self.path = path
        self._lock = lock

    def close(self) -> None:
        if self._lock.is_locked:
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
    lock = filelock.FileLock(path / LOCK_NAME, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise RunDirError(
            f"{path}: another run is writing this folder; wait for it to end or choose another "
            "--out"
        ) from None
    except OSError as e:
        raise RunDirError(f"{path}: cannot lock this run folder ({e.strerror or e})") from None
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
