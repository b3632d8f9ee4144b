"""``start``: run a function or generator in a worker thread, wired to the state's task list.

The state shows the task in the status bar (with its progress when the job reports one), a
failing job becomes an error dialog instead of a crash, and a cancellable job gets a
``progress`` callback that raises ``Cancelled`` once the user (or quitting) cancels it.
"""

from __future__ import annotations

import inspect
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal
from superqt.utils import GeneratorWorker, WorkerBase, create_worker

from avexplorer.state.app_state import AppState
from core.errors import UserError

# Training holds one thread for its whole run; thumbnails, projections and queries need others.
QThreadPool.globalInstance().setMaxThreadCount(
    max(4, QThreadPool.globalInstance().maxThreadCount())
)

_live: set[WorkerBase] = set()  # keep workers referenced until they finish


class Cancelled(UserError):
    """Raised inside a job whose task was cancelled (not an error: no dialog)."""


class _RaisedInGenerator(Exception):
    """Carries a ``RuntimeError`` out of a generator job (see ``_shielded``)."""


def _shielded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a generator function) with a ``RuntimeError`` it raises wrapped.

    superqt's generator worker takes a ``RuntimeError`` from the generator for a sign that the
    worker was deleted and returns in silence: no ``errored``, no ``finished``. A job failing
    with one (torch raises them) would then hang in the status bar and a training run would
    never be reported failed. Wrapped, it is an error like any other; ``start`` unwraps it.
    """

    def shielded(*args: Any, **kwargs: Any) -> Any:
        try:
            return (yield from fn(*args, **kwargs))
        except RuntimeError as e:
            raise _RaisedInGenerator() from e

    return shielded


class _Progress(QObject):
    """Carries a job's progress from its thread to the GUI thread (a queued signal)."""

    changed = Signal(int, int)


def start(
    state: AppState,
    name: str,
    fn: Callable[..., Any],
    *args: Any,
    on_done: Callable[[Any], None] | None = None,
    on_yield: Callable[[Any], None] | None = None,
    on_error: Callable[[str], None] | None = None,
    quiet: bool = False,
    unit: str = "",
    **kwargs: Any,
) -> WorkerBase:
    """Run ``fn(*args, **kwargs)`` (a function or a generator) in a worker thread.

    ``on_yield`` receives each yielded value and ``on_done`` the return value, both on the GUI
    thread. Errors go to ``on_error`` if given, else to the state's error dialog. ``quiet`` tasks
    (thumbnails) do not show in the status bar. With ``unit`` (e.g. "clips") the task can be
    cancelled and ``fn`` is given ``progress=callable(done, total)``: the status bar shows done /
    total, the rate and the ETA, and the call raises ``Cancelled`` once the task is cancelled.
    """
    cancel = threading.Event() if unit else None
    task = None if quiet else state.tasks.start(name, cancel)
    bridge = None
    if unit:
        bridge = _Progress()
        bridge.changed.connect(lambda done, total: state.tasks.progress(task, done, total, unit))

        def progress(done: int, total: int) -> None:
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"{name}: cancelled")
            bridge.changed.emit(done, total)

        kwargs["progress"] = progress
    if inspect.isgeneratorfunction(fn):
        fn = _shielded(fn)
    worker = create_worker(fn, *args, _start_thread=False, _ignore_errors=True, **kwargs)
    worker.cancel = cancel  # type: ignore[attr-defined]

    def end_task() -> None:
        if task is not None:
            state.tasks.finish(task)  # idempotent

    def finished() -> None:
        _live.discard(worker)
        end_task()

    def errored(exc: BaseException) -> None:
        if isinstance(exc, _RaisedInGenerator) and exc.__cause__ is not None:
            exc = exc.__cause__
        if isinstance(exc, Cancelled):
            state.signals.message.emit(str(exc))
            return
        if isinstance(exc, UserError):
            msg = str(exc)
        else:
            msg = f"{type(exc).__name__}: {exc}\n\n" + "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__)
            )
        if on_error is not None:
            on_error(msg)
        else:
            state.signals.report_error(f"{name} failed", msg)

    def returned(value: Any) -> None:
        # The task ends as its result lands, not at the worker's later `finished` signal, so no
        # view sees a result while the status bar still shows its task (they arrive as separate
        # events, far apart on a busy machine).
        end_task()
        if on_done is not None:
            on_done(value)

    worker.returned.connect(returned)
    if on_yield is not None and isinstance(worker, GeneratorWorker):
        worker.yielded.connect(on_yield)
    worker.errored.connect(errored)
    worker.finished.connect(finished)
    worker._bridge = bridge  # type: ignore[attr-defined]  (lives as long as the worker)
    _live.add(worker)
    worker.start()
    return worker


def live_workers() -> set[WorkerBase]:
    return set(_live)
