"""Play a clip's sound track with QtMultimedia, created on first use.

QtMultimedia loads its FFmpeg backend when first touched (a noticeable pause), so nothing is built
until the user presses Play. With no audio output device (a server, a container, a CI runner)
``play`` returns a message instead of raising, and the caller shows it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QUrl


class AudioPlayer(QObject):
    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._player = None
        self._output = None
        self.current: str | None = None

    def play(self, path: str | None) -> str:
        """Start playing ``path``; returns a one-line status message for the user."""
        if not path:
            return "This item has no clip file (features only), so there is nothing to play."
        if not Path(path).exists():
            return f"{Path(path).name}: the clip file is missing ({path})."
        try:
            from PySide6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer
        except ImportError:
            return "Audio playback needs QtMultimedia (PySide6-Addons), which is not installed."
        if not QMediaDevices.audioOutputs():
            return "No audio output device found: cannot play sound on this machine."
        if self._player is None:
            self._player = QMediaPlayer(self)
            self._output = QAudioOutput(self)
            self._player.setAudioOutput(self._output)
        self._player.stop()
        self._player.setSource(QUrl.fromLocalFile(str(Path(path).resolve())))
        self._player.play()
        self.current = path
        return f"Playing {Path(path).name}"

    def stop(self) -> None:
        if self._player is not None:
            self._player.stop()
