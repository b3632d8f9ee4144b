"""At start-up the status bar says when a pretrained encoder is missing, with the fix."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QLabel

from avexplorer.app import show_encoder_problems
from core.features.encoders import AISFX_INSTALL


def _warnings(window) -> list[str]:
    return [w.text() for w in window.statusBar().findChildren(QLabel) if "⚠" in w.text()]


def test_missing_aisfx_is_said_in_the_status_bar(window, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "aisfx", None)
    show_encoder_problems(window)
    (text,) = _warnings(window)
    assert AISFX_INSTALL in text
    window.statusBar().showMessage("a passing message", 1)  # covers it for a moment only
    window.statusBar().clearMessage()
    assert all(w.isVisible() for w in window.statusBar().findChildren(QLabel) if "⚠" in w.text())


def test_nothing_is_said_when_the_encoders_load(window, monkeypatch) -> None:
    monkeypatch.setattr("core.diagnostics.encoder_problems", lambda: [])
    show_encoder_problems(window)
    assert _warnings(window) == []
