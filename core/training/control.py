"""Pause / resume / stop flags for a running training, in a torch-free module (front ends import
it at start-up)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class TrainControl:
    """Thread-safe pause / resume / stop flags shared by a front end and a running ``train``.

    ``event_factory`` makes the two flags: ``threading.Event`` for a training thread, or a
    multiprocessing context's ``Event`` so that a parent process can steer a training child.
    """

    def __init__(self, event_factory: Callable[[], Any] = threading.Event) -> None:
        self._running = event_factory()
        self._running.set()
        self._stop = event_factory()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so that it can stop

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def wait_while_paused(self) -> None:
        self._running.wait()
