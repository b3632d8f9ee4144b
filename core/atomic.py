"""Atomic file writes: the one way core and the front ends write a file a user keeps.

A file is written under a temporary name in its own folder and renamed over the target only once
it is complete and on disk. A reader therefore sees the old file or the new one, never half of
one; a write that fails (disk full, read-only folder, an error in the writer) leaves the old file
as it was and removes the temporary one. A temporary file left by a process that was killed
mid-write is removed by the next write of that file (and by ``--force`` in a run folder).

Outputs never replace inputs: ``refuse_overwrite`` is the one check every command and the app
make before writing a file that could be one they read.

    with atomic_write(run_dir / "history.jsonl", "w") as f:
        f.write(text)
    with atomic_path(out / "features.h5") as tmp:  # for writers that want a path (h5py)
        write_h5(tmp)
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from core.errors import UserError

if TYPE_CHECKING:
    import h5py


class WriteError(UserError, OSError):
    """A file could not be written; the previous file at that path (if any) is unchanged."""


class OverwriteError(WriteError):
    """An output named as one of the inputs it is made from; nothing was written."""


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


def refuse_overwrite(out: str | Path, inputs: Iterable[tuple[str, str | Path | None]]) -> None:
    """Refuse to write ``out`` over a file it is made from.

    ``inputs`` are (what, path) pairs, ``what`` saying in words what that path is to the command
    ("the checkpoint it reads", "an input clip"); None paths are passed over. The same file under
    another name (a symbolic or hard link) counts as the same file.
    """
    try:
        target = os.stat(out)
    except OSError:  # nothing there (or nothing reachable): no input can be lost
        return
    for what, path in inputs:
        if path is None:
            continue
        try:
            same = os.path.samestat(target, os.stat(path))
        except OSError:
            continue
        if same:
            raise OverwriteError(
                f"{out}: that is {what}; an output never replaces what it is made from, "
                "so write it to another file"
            )


@contextlib.contextmanager
def write_errors(path: str | Path) -> Iterator[None]:
    """OS errors of a block writing ``path``, and a full disk reported as a RuntimeError (as
    h5py and torch do), become a one-line ``WriteError`` naming ``path``."""
    try:
        yield
    except WriteError:
        raise
    except OSError as e:
        raise WriteError(_could_not(path, _reason(e))) from None
    except RuntimeError as e:
        if not _disk_full(Path(path).parent, e):
            raise
        raise WriteError(_could_not(path, os.strerror(errno.ENOSPC))) from None


@contextlib.contextmanager
def atomic_path(path: str | Path, *, tidy: bool = True) -> Iterator[Path]:
    """A temporary path beside ``path``; renamed onto ``path`` when the block ends without error.

    OS errors (inside the block or in the rename), and a full disk however the writer reports
    it, become a ``WriteError`` naming ``path``; any failure removes the temporary file. With
    ``tidy``, temporary files of ``path`` left by killed writers are removed first (a look
    through the folder: the cache, writing many small files into large folders, skips it).
    """
    path = Path(path)
    if path.is_dir():
        raise WriteError(f"{path}: is a folder, cannot write a file there")
    prepare_folder(path.parent)
    if tidy:
        remove_stale_temps(path)
    tmp = temp_name(path)
    try:
        # write_errors judges a full disk before the temporary file is removed to free it
        with write_errors(path):
            # Created here (not by mkstemp) so that the final file gets the usual umask
            # permissions.
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            yield tmp
            os.replace(tmp, path)
    except WriteError as e:  # a writer that writes atomically too names our temporary file
        if str(tmp) not in str(e):
            raise
        raise WriteError(str(e).replace(str(tmp), str(path))) from None
    finally:
        _remove(tmp)


@contextlib.contextmanager
def atomic_write(
    path: str | Path, mode: str = "wb", *, sync: bool = True, tidy: bool = True, **kwargs: Any
) -> Iterator[IO[Any]]:
    """An open file that becomes ``path`` only when the block ends without error (synced first,
    so a crash right after the rename cannot leave an empty file; ``sync=False`` skips that for
    files that can be made again, such as cache entries; ``tidy`` as for ``atomic_path``)."""
    with atomic_path(path, tidy=tidy) as tmp, open(tmp, mode, **kwargs) as f:
        yield f
        if sync:
            f.flush()
            os.fsync(f.fileno())


@contextlib.contextmanager
def open_h5(path: str | Path, mode: str = "w") -> Iterator[h5py.File]:
    """An HDF5 file opened for writing (``mode`` "w" or "r+") through a Python file object.

    HDF5's own file driver crashed the process (a segmentation fault while closing the file)
    when the disk filled up under it; through a Python file, a full disk is an ``OSError`` like
    any other, which ``atomic_path`` and ``write_errors`` report in one line.
    """
    import h5py

    sink = H5Sink(path, mode)
    try:
        f = h5py.File(sink, mode)
        try:
            yield f
        except BaseException:
            discard_h5(f, sink)
            raise
        f.close()
    finally:
        sink.close()


class H5Sink:
    """The Python file HDF5 writes through (see ``open_h5``), able to drop what is left to write.

    HDF5 keeps a file it could not flush open, and flushes it again when its last object is freed
    (when a traceback holding it goes), which crashed the process. A file being thrown away is
    ``discard``-ed instead: from then on writes vanish, so HDF5 closes it at once.
    """

    def __init__(self, path: str | Path, mode: str = "w") -> None:
        self._file = open(path, "w+b" if mode == "w" else "r+b")  # noqa: SIM115 (see close)
        self._discarded = False

    def discard(self) -> None:
        self._discarded = True
        with contextlib.suppress(OSError):
            os.ftruncate(self._file.fileno(), 0)  # the space back at once

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def readinto(self, buffer: Any) -> int:
        return self._file.readinto(buffer)

    def write(self, data: Any) -> int:
        return memoryview(data).nbytes if self._discarded else self._file.write(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def truncate(self, size: int | None = None) -> int:
        if self._discarded:
            return size or 0
        return self._file.truncate(size)

    def flush(self) -> None:
        if not self._discarded:
            self._file.flush()

    def close(self) -> None:
        if self._discarded:  # what Python still buffers is dropped with the file
            with contextlib.suppress(OSError):
                self._file.close()
        else:
            self._file.close()


def discard_h5(f: h5py.File, sink: H5Sink) -> None:
    """Close an HDF5 file written through ``sink`` whose contents are being thrown away."""
    sink.discard()
    with contextlib.suppress(Exception):  # the write's own error is the one to report
        f.close()


def temp_name(path: str | Path) -> Path:
    """A fresh temporary name beside ``path``, naming this process (see ``remove_stale_temps``)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{_TMP}")


def remove_stale_temps(path: str | Path, *, any_owner: bool = False) -> None:
    """Remove the temporary files of ``path`` left by writers that were killed mid-write.

    A temporary file names the process writing it; it is stale once that process is gone.
    ``any_owner`` removes them all, for a caller that knows no one else writes ``path`` (a run
    folder's lock holder).
    """
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)-[0-9a-f]+{re.escape(_TMP)}")
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            m = pattern.fullmatch(entry.name)
            if m and (any_owner or not _alive(int(m.group(1)))):
                _remove(Path(entry.path))


_TMP = ".tmp"
# Free space below which a write that failed without an errno is taken for a full disk.
_NEARLY_FULL = 1 << 20


def _disk_full(folder: Path, error: RuntimeError) -> bool:
    """Whether ``error`` (h5py and torch report a failed write as a RuntimeError, sometimes
    without the OS's reason) came from a full disk: said so, or the folder's disk has no room."""
    text = str(error)
    if "No space left" in text or "errno = 28" in text:
        return True
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    free = st.f_bfree if os.geteuid() == 0 else st.f_bavail  # root may use the reserved blocks
    return free * st.f_frsize < _NEARLY_FULL


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def _could_not(path: str | Path, reason: str) -> str:
    return f"{path}: could not be written ({reason}); any previous file there is unchanged"


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _reason(e: OSError) -> str:
    """The OS's reason in a few words (h5py's messages run over several lines of details)."""
    if e.errno:
        return os.strerror(e.errno)
    text = e.strerror or str(e) or type(e).__name__
    return text.strip().splitlines()[0]
