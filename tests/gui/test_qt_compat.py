import sys

import pytest

from avexplorer import qt_compat


def _none_refs_lost(n: int) -> int:
    from PySide6.QtWidgets import QWidget

    w = QWidget()
    before = sys.getrefcount(None)
    for _ in range(n):
        w.update()  # a C++ method returning void
    return before - sys.getrefcount(None)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from CPython 3.12 on")
def test_void_qt_calls_cannot_deallocate_none(qtbot):
    """PySide6 6.12 drops a reference to None per void call; the guard keeps None alive."""
    qt_compat.protect_none()
    lost = _none_refs_lost(100_000)  # more than None's unguarded count in the app (~60k)
    assert sys.getrefcount(None) > 2**46
    if lost == 0:
        print("this PySide6 no longer leaks references to None: qt_compat can go")


def test_protect_none_is_idempotent():
    qt_compat.protect_none()
    first = sys.getrefcount(None)
    qt_compat.protect_none()
    assert abs(sys.getrefcount(None) - first) < 2**40
