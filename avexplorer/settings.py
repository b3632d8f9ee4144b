"""The app's persistent settings (window layout, last folders, recent runs), in one INI file."""

from __future__ import annotations

from PySide6.QtCore import QSettings


def settings() -> QSettings:
    """The app's persistent settings (window layout, last paths, recent runs)."""
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, "avexplorer", "avexplorer"
    )
