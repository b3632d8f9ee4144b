"""Decoding untrusted media in child processes, so that a decoder crash costs one file, not the run.

FFmpeg and its Python binding are C code reading whatever a file holds: an unusual or hostile
file can crash them (a segmentation fault), and no ``except`` catches that. So every front end
decodes in a child process: one-file calls (the app's thumbnails, sound and file queries,
``locate``) and extraction with one worker go through the session's ``DecoderProcess``
(``isolated``), kept warm between calls; extraction with more workers through a ``DecoderPool``.
When a child dies on a job, that job is run once more in a fresh process (in a pool, another job
in flight at the time may have been the culprit); if that dies too, the file is reported as a
``ClipError`` and the next job gets a fresh process.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from core.errors import UserError
from core.features.errors import CORRUPT, ClipError

T = TypeVar("T")

CRASHED = "the decoder crashed on this file"


class DecoderPool:
    """``workers`` decoding processes, started on first use and replaced when one dies.

    The processes are started from a thread of the pool's own, which lives as long as the pool:
    Linux ends a child when the *thread* that started it ends (``PR_SET_PDEATHSIG``, which ties
    the children's lives to the parent's), and the thread asking for work may be a short-lived
    worker thread of the app.
    """

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._launcher = ThreadPoolExecutor(1, thread_name_prefix="starts-decoding-processes")

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        with self._lock:
            for _ in range(2):  # a pool broken by an earlier crash is replaced once
                if self._executor is None:
                    self._executor = self._launcher.submit(self._start).result()
                try:
                    return self._executor.submit(fn, *args)
                except BrokenProcessPool:
                    self._executor.shutdown(wait=False, cancel_futures=True)
                    self._executor = None
            raise DecoderStartError(_CANNOT_START)

    def call(self, path: str | Path, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a decoding process; a ClipError naming ``path`` when it crashes."""
        try:
            return self.submit(fn, *args).result()
        except BrokenProcessPool:
            return self.retry(path, fn, *args)

    def retry(self, path: str | Path, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` once more in a fresh process, after a process died while running it."""
        try:
            return self.submit(fn, *args).result()
        except BrokenProcessPool:
            raise ClipError(path, CRASHED, CORRUPT) from None

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None
        self._launcher.shutdown(wait=False)

    def _start(self) -> ProcessPoolExecutor:
        # spawn, not fork: the parent holds torch's thread pools, which do not survive a fork.
        context = mp.get_context("spawn")
        executor = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_worker)
        # One task per process makes the executor start them all now, from this thread.
        try:
            for future in [executor.submit(int) for _ in range(self.workers)]:
                future.result()
        except BrokenProcessPool:  # not a file's fault: no process can run here at all
            executor.shutdown(wait=False, cancel_futures=True)
            raise DecoderStartError(_CANNOT_START) from None
        return executor


class DecoderStartError(UserError):
    """No decoding process can start (so no file is to blame)."""


_CANNOT_START = "a decoding process could not start (see the messages above)"


class DecoderProcess:
    """One decoding process, running one job at a time (callers in several threads take turns).

    Started as ``python -c`` on this module rather than by multiprocessing, whose new processes
    import the caller's main script again: a script without an ``if __name__ == "__main__"``
    guard, or read from standard input, cannot survive that, and ``encode_path`` is called from
    such scripts. Jobs and results cross a pipe, pickled; nothing else of the caller is imported.
    """

    def __init__(self) -> None:
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        # See DecoderPool: the process is started from a thread that lives as long as this.
        self._launcher = ThreadPoolExecutor(1, thread_name_prefix="starts-decoding-processes")

    def call(self, path: str | Path, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the decoding process; a ClipError naming ``path`` when it crashes
        twice (once more in a fresh process, as a pool does)."""
        request = pickle.dumps((fn, args), pickle.HIGHEST_PROTOCOL)
        with self._lock:
            for _ in range(2):
                if self._child is None:
                    self._child = self._launcher.submit(self._start).result()
                child = self._child
                try:
                    return _ask(child, request)
                except _Died as died:
                    self._child = None
                    code = died.code
            raise ClipError(path, f"{CRASHED} ({_how_it_ended(code)})", CORRUPT)

    def close(self) -> None:
        with self._lock:
            if self._child is not None:
                _end(self._child)
                self._child = None

    @staticmethod
    def _start() -> subprocess.Popen[bytes]:
        boot = (
            "import pickle, sys; sys.path[:] = pickle.load(sys.stdin.buffer); "
            "from core.features.decoder_process import _serve; _serve()"
        )
        child = subprocess.Popen(
            [sys.executable, "-c", boot], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert child.stdin is not None
        try:
            child.stdin.write(pickle.dumps(sys.path))
            _ask(child, pickle.dumps((int, ())))  # answers: it runs
        except (_Died, OSError):
            _end(child)
            raise DecoderStartError(_CANNOT_START) from None
        return child


class _Died(Exception):
    def __init__(self, code: int | None) -> None:
        super().__init__(code)
        self.code = code


def _ask(child: subprocess.Popen[bytes], request: bytes) -> Any:
    """Send a pickled (function, arguments) and return its result (or raise its error)."""
    assert child.stdin is not None and child.stdout is not None
    try:
        child.stdin.write(request)
        child.stdin.flush()
        ok, value = pickle.load(child.stdout)
    except (OSError, EOFError, pickle.UnpicklingError):
        raise _Died(_end(child)) from None
    if ok:
        return value
    raise value


def _end(child: subprocess.Popen[bytes]) -> int | None:
    """Stop ``child`` (its input closed, then killed if it lingers); its exit code."""
    with contextlib.suppress(OSError):
        child.stdin.close()  # type: ignore[union-attr]
    try:
        code = child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        code = child.wait()
    child.stdout.close()  # type: ignore[union-attr]
    return code


def _how_it_ended(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
    return f"exit code {code}"


def _serve() -> None:
    """The decoding process: a pickled (function, arguments) in, (ok, result or error) out."""
    _init_worker()
    requests = sys.stdin.buffer
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever the decoders print goes to stderr, never into the replies
    while True:
        try:
            fn, args = pickle.load(requests)
        except EOFError:  # the caller closed the pipe, or ended
            return
        try:
            reply: tuple[bool, Any] = (True, fn(*args))
        except Exception as e:  # handed back: ClipError for a bad file, anything else a bug
            reply = (False, e)
        try:
            data = pickle.dumps(reply, pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # an error that does not pickle still comes back, as text
            data = pickle.dumps((False, RuntimeError(f"{type(e).__name__}: {e}")))
        replies.write(data)
        replies.flush()


_shared = DecoderProcess()


def isolated(fn: Callable[..., T], path: str | Path, *args: Any) -> T:
    """``fn(path, *args)`` in the session's decoding process (started on first use, kept warm).

    ``fn`` must be a module-level function (it is pickled by name) returning plain data. Its
    ClipErrors come back as they are; a crash of the process becomes a ClipError naming ``path``.
    """
    return _shared.call(path, fn, str(path), *args)


def shared_process() -> DecoderProcess:
    """The session's decoding process ``isolated`` uses (extraction with one worker shares it)."""
    return _shared


def _init_worker() -> None:
    # Ctrl-C reaches the whole process group: the main process handles it and shuts the pool
    # down; a decoder must not die mid-job of it (and print a traceback).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    # Decoding processes share the machine with the encoders: one thread each.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover
        pass


def _die_with_parent() -> None:
    """Ask Linux to end this process when its parent ends, however it ends (even SIGKILL), so
    that killing ``extract`` or the app leaves no decoding process behind. A no-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() == 1:  # the parent was already gone before the request took effect
            os._exit(1)


_PR_SET_PDEATHSIG = 1
