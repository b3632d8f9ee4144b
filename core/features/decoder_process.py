"""Decoding untrusted media in child processes, so that a decoder crash costs one file, not the run.

FFmpeg and its Python binding are C code reading whatever a file holds: an unusual or hostile
file can crash them (a segmentation fault), and no ``except`` catches that. So every front end
decodes in a child process: extraction streams its jobs through a ``DecoderPool``; one-file calls
(the app's thumbnails, sound and file queries, ``locate``) go through ``isolated``, which keeps
one decoding process warm for the whole session. When a child dies on a job, that job is run once
more in a fresh process (another job in flight at the time may have been the culprit); if that
dies too, the file is reported as a ``ClipError`` and the next job gets a fresh process.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

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
            raise BrokenProcessPool("decoding processes cannot be started")

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
        for future in [executor.submit(int) for _ in range(self.workers)]:
            future.result()
        return executor


_shared = DecoderPool(1)


def isolated(fn: Callable[..., T], path: str | Path, *args: Any) -> T:
    """``fn(path, *args)`` in the session's decoding process (started on first use, kept warm).

    ``fn`` must be a module-level function (it is pickled by name) returning plain data. Its
    ClipErrors come back as they are; a crash of the process becomes a ClipError naming ``path``.
    """
    return _shared.call(path, fn, str(path), *args)


def shared_pool() -> DecoderPool:
    """The session's one-process pool ``isolated`` uses (extraction with one worker shares it)."""
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
