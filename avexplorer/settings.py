"""The app's persistent settings (window layout, last folders, recent runs), in one INI file."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

from core.data.dataset import user_may_write


def settings() -> QSettings:
    """The app's persistent settings (window layout, last paths, recent runs)."""
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, "avexplorer", "avexplorer"
    )


def user_files_folder() -> Path:
    """Where the user's own files go by default when the dataset's folder will not do (the
    demo's, inside the installed package, or a read-only one): ``avexplorer`` in their documents
    folder, else their application data folder."""
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    if documents:
        return Path(documents) / "avexplorer"
    data = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    return Path(data) if data else Path.home() / "avexplorer"


def save_folder(kind: str, source: str) -> Path:
    """The folder a save dialog opens in for a file made from the dataset ``source``: the last
    folder the user chose for ``kind``, else the dataset's folder, unless the user's files may
    not go there (the installed package's, as the demo's is, or read-only: ``user_may_write``),
    else ``user_files_folder`` (made if need be)."""
    remembered = settings().value(f"paths/{kind}")
    for folder in (remembered, Path(source).parent if source else None):
        if folder and user_may_write(folder):
            return Path(folder)
    folder = user_files_folder()
    folder.mkdir(parents=True, exist_ok=True)
    return folder
