"""Work-arounds for the Qt binding, applied once when the app's Qt modules are imported.

PySide6 6.12.0 on CPython < 3.12 releases a reference to ``None`` that it never took each time a
C++ method returning ``void`` is called from Python (``QWidget.update()``, ``QPainter.setPen()``,
every pyqtgraph repaint: thousands a second while the plots follow a training run). ``None``'s
reference count, some 60k in the app, then reaches zero within a minute of live plotting and the
interpreter aborts with "Fatal Python error: none_dealloc". CPython 3.12 made ``None`` immortal,
so there the bug is harmless; here we do the same by hand: ``protect_singletons`` adds 2**48
references to ``None``, more than the binding can drop in centuries, so it can never be
deallocated. ``True`` and ``False`` leak the same
way (pyqtgraph's ``PlotDataItem.setData`` loses about one per call: a process that had drawn a few
thousand curve updates aborted with "bool_dealloc" as it exited) and get the same guard.
``tests/gui/test_qt_compat.py`` measures the leaks (when they read zero, a fixed PySide6 can be
required and this can go) and checks that leaking calls leave the process alive.
"""

from __future__ import annotations

import ctypes
import sys

_MARGIN = 1 << 48


def protect_singletons() -> None:
    """Make ``None``, ``True`` and ``False`` effectively immortal on CPython < 3.12 (idempotent)."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    for singleton in (None, True, False):
        refcount = ctypes.c_ssize_t.from_address(id(singleton))  # ob_refcnt, the first field
        if refcount.value < _MARGIN // 2:
            refcount.value += _MARGIN


protect_singletons()
