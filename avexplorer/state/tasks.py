"""The background tasks the status bar shows: each one's name, progress and how to cancel it.

``Tasks`` lives in ``AppState.tasks``: jobs call ``start`` / ``progress`` / ``finish`` on the GUI
thread, and ``taskChanged`` carries the newest task's text ("" when idle). Iterating it gives the
running tasks, oldest first; it is false when none runs. Cancel, which may stop a run instead,
is the root's (``AppState.cancel``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from avexplorer.state.signals import StateSignals


@dataclass
class Task:
    """A background task the status bar shows: its name, progress, and how to cancel it."""

    name: str
    done: int = 0
    total: int = 0  # 0: no count known
    unit: str = ""
    started: float = field(default_factory=time.monotonic)
    cancel: threading.Event | None = None  # set to cancel; None: cannot be cancelled

    def text(self) -> str:
        if not self.total:
            return self.name
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else None
        eta_text = f"{int(eta // 60)}:{int(eta % 60):02d}" if eta is not None else "?"
        return (
            f"{self.name}: {self.done}/{self.total} {self.unit} · {rate:.1f} {self.unit}/s"
            f" · ETA {eta_text}"
        )


class Tasks:
    def __init__(self, signals: StateSignals):
        self.signals = signals
        self._tasks: list[Task] = []

    def __iter__(self) -> Iterator[Task]:
        return iter(list(self._tasks))

    def __len__(self) -> int:
        return len(self._tasks)

    def start(self, name: str, cancel: threading.Event | None = None) -> Task:
        task = Task(name, cancel=cancel)
        self._tasks.append(task)
        self.signals.taskChanged.emit(task.text())
        return task

    def progress(self, task: Task, done: int, total: int, unit: str = "") -> None:
        task.done, task.total, task.unit = done, total, unit or task.unit
        if self._tasks and self._tasks[-1] is task:
            self.signals.taskChanged.emit(task.text())

    def finish(self, task: Task) -> None:
        if task in self._tasks:
            self._tasks.remove(task)
        self.signals.taskChanged.emit(self._tasks[-1].text() if self._tasks else "")

    @property
    def cancellable(self) -> bool:
        """Whether some task can be cancelled."""
        return any(t.cancel is not None for t in self._tasks)

    def cancel_newest(self) -> bool:
        """Cancel the newest task that can be and is not cancelled yet; False when none is."""
        for task in reversed(self._tasks):
            if task.cancel is not None and not task.cancel.is_set():
                task.cancel.set()
                self.signals.message.emit(f"Cancelling {task.name}…")
                return True
        return False

    def cancel_all(self) -> None:
        for task in self._tasks:
            if task.cancel is not None:
                task.cancel.set()
