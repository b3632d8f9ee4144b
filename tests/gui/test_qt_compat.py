import sys

import pytest

from avexplorer import qt_compat

needs_guard = pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="None, True and False are immortal from CPython 3.12 on"
)


def _refs_lost(obj: object, call, n: int) -> int:
    before = sys.getrefcount(obj)
    for _ in range(n):
        call()
    return before - sys.getrefcount(obj)


@needs_guard
def test_void_qt_calls_cannot_deallocate_none(qtbot):
    """PySide6 6.12 drops a reference to None per void call; the guard keeps None alive."""
    from PySide6.QtWidgets import QWidget

    qt_compat.protect_singletons()
    w = QWidget()
    lost = _refs_lost(None, w.update, 100_000)  # more than None's unguarded count in the app
    assert sys.getrefcount(None) > 2**46
    if lost == 0:
        print("this PySide6 no longer leaks references to None: qt_compat can go")


@needs_guard
def test_curve_updates_cannot_deallocate_true_or_false(qtbot):
    """pyqtgraph's setData drops references to a bool: unguarded, 2,000 calls aborted Python."""
    import pyqtgraph as pg

    qt_compat.protect_singletons()
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    curve = plot.plot([1.0, 2.0, 3.0])
    x, y = [1.0, 2.0, 3.0], [3.0, 2.0, 1.0]
    for _ in range(20_000):
        curve.setData(x, y)
    assert min(sys.getrefcount(True), sys.getrefcount(False)) > 2**46


def test_protect_singletons_is_idempotent():
    qt_compat.protect_singletons()
    singletons = (None, True, False)
    first = [sys.getrefcount(x) for x in singletons]
    qt_compat.protect_singletons()
    after = [sys.getrefcount(x) for x in singletons]
    assert all(abs(a - f) < 2**40 for a, f in zip(after, first, strict=True))
