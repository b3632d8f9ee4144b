"""UMAP layouts in a child process that lives for the session (PCA is cheap: see projections)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from avexplorer.jobs.spawning import main_module_hidden
from avexplorer.projections import Layout, layout_with_ranks
from core.errors import UserError
from core.projection import project, warm_up_umap


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
        launch), while the user does something else: a later ``layout`` then only computes."""
        with self._lock:
            if self._closed.is_set() or self._pool is not None:
                return
            self._pool = self._new_pool()
            self._pool.apply_async(warm_up_umap)

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
