"""Work-arounds for the Qt binding, applied once when the app's Qt modules are imported.

PySide6 6.12.0 on CPython < 3.12 releases a reference to ``None`` that it never took each time a
C++ method returning ``void`` is called from Python (``QWidget.update()``, ``QPainter.setPen()``,
every pyqtgraph repaint: thousands a second while the plots follow a training run). ``None``'s
reference count, some 60k in the app, then reaches zero within a minute of live plotting and the
interpreter aborts with "Fatal Python error: none_dealloc" (the crash that was blamed on
``setDownsampling``). CPython 3.12 made ``None`` immortal, so there the bug is harmless; here we
do the same by hand: ``protect_none`` adds 2**48 references to ``None``, more than the binding
can drop in centuries, so it can never be deallocated. ``tests/gui/test_qt_compat.py`` measures
the leak (when it reads zero, a fixed PySide6 can be required and this can go) and checks that
100k leaking calls leave the process alive.
"""

from __future__ import annotations

import ctypes
import sys

_MARGIN = 1 << 48


def protect_none() -> None:
    """Make ``None`` effectively immortal on CPython < 3.12 (idempotent)."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    refcount = ctypes.c_ssize_t.from_address(id(None))  # ob_refcnt, the object's first field
    if refcount.value < _MARGIN // 2:
        refcount.value += _MARGIN


protect_none()
