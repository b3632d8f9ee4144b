"""UMAP layouts in a child process that lives for the session (PCA is cheap: see projections)."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

import numpy as np

from avexplorer.jobs.spawning import main_module_hidden
from avexplorer.projections import Layout, layout_with_ranks
from core.errors import UserError
from core.projection import project, warm_up_umap

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


class ProjectionProcess:
    """One child process, started on first use and kept for the session, that computes UMAP.

    UMAP's first fit in a process imports umap and loads its numba kernels from the on-disk cache
    (compiles them, on a first launch), and much of UMAP is Python that would contend with the GUI
    thread for the GIL: in a child that happens once per session and the window stays smooth.
    ``close`` ends the child at once; a fit waiting on it is abandoned.
    """

    def __init__(self) -> None:
        self._pool: Any = None
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def warm_up(self) -> None:
        """Start the child now and have it load UMAP's compiled kernels (compile them, on a first
        launch), while the user does something else: a later ``layout`` then only computes.
        Starting the child takes a moment: ``prestart`` does it from a background thread."""
        with self._lock:
            if self._closed.is_set() or self._pool is not None:
                return
            self._pool = self._new_pool()
            self._pool.apply_async(warm_up_in_background)

    def prestart(self) -> threading.Thread | None:
        """``warm_up`` from a daemon thread (None when the child is already there or closing)."""
        if self._closed.is_set() or self._pool is not None:
            return None
        thread = threading.Thread(target=self.warm_up, name="umap-prestart", daemon=True)
        thread.start()
        return thread

    @property
    def started(self) -> bool:
        return self._pool is not None

    def pid(self) -> int | None:
        """The child's process id (None before it starts), for measurements."""
        with self._lock:
            procs = getattr(self._pool, "_pool", None) or []
            return procs[0].pid if procs else None

    @staticmethod
    def _new_pool() -> Any:
        import multiprocessing as mp

        with main_module_hidden():  # the pool starts its worker now
            return mp.get_context("spawn").Pool(1)

    def layout(
        self,
        epoch: int,
        audio: np.ndarray,
        visual: np.ndarray,
        method: str,
        previous: np.ndarray | None,
    ) -> Layout:
        """Blocks until the child returns the coordinates: call it from a worker thread.

        The child only projects; the match ranks are made here, where torch is loaded, so that
        the child need not import it (a large share of a session's first UMAP).
        """
        points = np.vstack([audio, visual])
        with self._lock:
            if self._closed.is_set():
                raise UserError("the app is closing")
            if self._pool is None:
                self._pool = self._new_pool()
            pending = self._pool.apply_async(project, (points, method, previous))
        while not pending.ready():
            if self._closed.wait(0.1):
                raise UserError("the app is closing")
        return layout_with_ranks(epoch, method, pending.get(), audio, visual)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            if self._pool is not None:
                self._pool.terminate()
                self._pool = None
