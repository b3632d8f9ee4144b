"""UMAP and t-SNE layouts in a child process that lives for the session (PCA is cheap: see
projections)."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

import numpy as np

from avexplorer.jobs.spawning import main_module_hidden
from avexplorer.projections import Layout, layout_with_tree
from core.errors import UserError
from core.exploration.projection import project, warm_up_umap

WARM_UP_NICE = 10  # the warm-up is speculative: it yields the CPU to the app and to training


def warm_up_in_background() -> None:
    """In the child: load UMAP's kernels from a thread of lower priority. Linux keeps a nice value
    per thread, so the speculative warm-up gives way to the app and training while the fits the
    user asks for, which run on the child's main thread, keep their normal priority (elsewhere
    ``setpriority`` of a thread id fails and the warm-up simply runs at normal priority)."""

    def run() -> None:
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WARM_UP_NICE)
        warm_up_umap()

    thread = threading.Thread(target=run, name="umap-warm-up")
    thread.start()
    thread.join()


def serve(conn: Any) -> None:
    """The child's loop: run each ``(fn, args)`` the app sends and send back ``(True, result)``
    or ``(False, exception)``, until the app closes its end of the pipe."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is the app's to handle
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = (True, fn(*args))
        except Exception as e:
            reply = (False, e)
        conn.send(reply)


class ProjectionProcess:
    """One child process, started on first use and kept for the session, that computes UMAP and
    t-SNE layouts (t-SNE, openTSNE's compiled code, needs no warm-up; it runs here for the same
    reason as UMAP: a long fit that must neither block nor slow the GUI thread).

    UMAP's first fit in a process imports umap and loads its numba kernels from the on-disk cache
    (compiles them, on a first launch), and much of UMAP is Python that would contend with the GUI
    thread for the GIL: in a child that happens once per session and the window stays smooth.

    The child is a plain process and a pipe, not a ``multiprocessing.Pool``: a pool's worker
    waits for work holding a lock shared with the app, so a worker killed there (a SIGTERM to the
    whole process group, the OOM killer) left the pool unable to close and the app hanging on
    exit, and a worker that died during a fit was replaced while the fit waited forever. Here a
    dead child is an error at once, and ``close`` ends it whatever state it is in.
    """

    def __init__(self) -> None:
        self._child: Any = None  # the process
        self._conn: Any = None  # the app's end of the pipe
        self._sent = 0  # requests sent; replies come back in the same order
        self._received = 0
        self._lock = threading.Lock()  # starting the child, sending
        self._reading = threading.Lock()  # one caller reads replies at a time
        self._closed = threading.Event()

    def warm_up(self) -> None:
        """Start the child now and have it load UMAP's compiled kernels (compile them, on a first
        launch), while the user does something else: a later ``layout`` then only computes.
        Starting the child takes a moment: ``prestart`` does it from a background thread."""
        with self._lock:
            if self._closed.is_set() or self._child is not None:
                return
            self._start()
            with contextlib.suppress(UserError):  # closed meanwhile: ended just below
                self._send(warm_up_in_background, ())
        if self._closed.is_set():  # the app closed while the child was starting
            self._end_child()

    def prestart(self) -> threading.Thread | None:
        """``warm_up`` from a daemon thread (None when the child is already there or closing)."""
        if self._closed.is_set() or self._child is not None:
            return None
        thread = threading.Thread(target=self.warm_up, name="umap-prestart", daemon=True)
        thread.start()
        return thread

    @property
    def started(self) -> bool:
        return self._child is not None

    def pid(self) -> int | None:
        """The child's process id (None before it starts), for measurements."""
        child = self._child
        return child.pid if child is not None else None

    def call(self, fn: Any, *args: Any, progress: Any = None) -> Any:
        """``fn(*args)`` run in the child (after what was sent before it), blocking until it
        returns: call it from a worker thread. An exception in the child is raised here.

        ``progress(0, 0)`` is called while it waits; an exception it raises (a Cancel) ends the
        child, which cannot stop a fit half-way, and is raised here: the next call starts a new
        child."""
        with self._lock:
            if self._closed.is_set():
                raise UserError("the app is closing")
            if self._child is not None and not self._child.is_alive():
                self._end_child()  # it died (the error went to the call it was serving)
            if self._child is None:
                self._start()
            ticket = self._send(fn, args)
        if self._closed.is_set():  # the app closed while the child was starting
            self._end_child()
            raise UserError("the app is closing")
        with self._reading:
            while self._received < ticket:
                ok, value = self._receive(progress)
                self._received += 1
            if not ok:
                raise value
            return value

    def layout(
        self,
        epoch: int,
        audio: np.ndarray,
        visual: np.ndarray,
        method: str,
        previous: np.ndarray | None,
        progress: Any = None,
    ) -> Layout:
        """Blocks until the child returns the coordinates: call it from a worker thread.

        The child only projects; the KD-tree is built here.
        """
        coords = self.call(project, np.vstack([audio, visual]), method, previous, progress=progress)
        return layout_with_tree(epoch, method, coords)

    def close(self) -> None:
        """End the child at once; a call waiting on it raises "the app is closing". Never waits
        for a child being started (``warm_up`` ends that one itself)."""
        self._closed.set()
        self._end_child()

    def _end_child(self) -> None:
        child, conn, self._child = self._child, self._conn, None
        if child is not None:
            child.kill()
            child.join(5)
            conn.close()

    def _start(self) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        ours, theirs = ctx.Pipe()
        child = ctx.Process(target=serve, args=(theirs,), name="umap", daemon=True)
        with main_module_hidden():
            child.start()
        theirs.close()  # the child's end lives in the child: EOF there once the app's end closes
        # Seen by ``close`` only once started: a close meanwhile finds no child, and the caller,
        # seeing the app closed, ends this one.
        self._sent = self._received = 0
        self._child, self._conn = child, ours

    def _send(self, fn: Any, args: tuple) -> int:
        try:
            self._conn.send((fn, args))
        except OSError:
            if self._closed.is_set():  # ``close`` closed the pipe under us
                raise UserError("the app is closing") from None
            raise
        self._sent += 1
        return self._sent

    def _receive(self, progress: Any = None) -> tuple[bool, Any]:
        """The next reply; waits while the child works, watching for the app closing and for a
        child that died (its end of the pipe then closes)."""
        child, conn = self._child, self._conn
        while not self._closed.is_set() and child is not None:
            if progress is not None:
                try:
                    progress(0, 0)
                except BaseException:
                    self._end_child()
                    raise
            try:
                if conn.poll(0.1):
                    return conn.recv()
                continue
            except (EOFError, OSError):
                if self._closed.is_set():
                    break
            child.join(1)
            raise UserError(
                "the projection process (UMAP, t-SNE) ended unexpectedly "
                f"(exit code {child.exitcode}); the next layout starts a new one"
            )
        raise UserError("the app is closing")
