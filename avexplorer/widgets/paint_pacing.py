"""One timer paces every live view, and lets at most one of them change per tick.

Qt paints everything that changed since the last paint in one pass. When the loss curves, the
MAP and r_t plots and both heatmaps all change on the same timer tick (an epoch end), that pass
holds the GUI thread for the sum of their paints, well over 100 ms on a loaded two-core machine.
Here each view is a ``draw`` callable returning whether it changed anything; a tick (every
``interval_ms``) offers the turn round-robin and stops at the first view that draws, so one paint
pass holds one view's changes. A view's ``min_interval_ms`` caps its own rate (the loss plot
redraws at most 10 times a second however fast steps come).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer


class FrameScheduler(QObject):
    def __init__(self, interval_ms: int = 25, parent: QObject | None = None):
        super().__init__(parent)
        self._views: list[tuple[Callable[[], bool], float]] = []
        self._last: list[float] = []
        self._next = 0
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    def add(self, draw: Callable[[], bool], min_interval_ms: float = 0.0) -> None:
        """Give ``draw`` (returns True when it changed something) a turn on the ticks."""
        self._views.append((draw, min_interval_ms / 1000.0))
        self._last.append(float("-inf"))

    def tick(self) -> None:
        now = time.monotonic()
        n = len(self._views)
        for k in range(n):
            i = (self._next + k) % n
            draw, min_interval = self._views[i]
            if now - self._last[i] < min_interval:
                continue
            if draw():
                self._last[i] = now
                self._next = (i + 1) % n
                return
