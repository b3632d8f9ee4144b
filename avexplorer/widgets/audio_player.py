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
        self._seek_to: int | None = None  # ms, applied once the media can seek
        self.current: str | None = None

    def play(self, path: str | None, start: float = 0.0) -> str:
        """Start playing ``path`` (from ``start`` seconds); returns a one-line status message."""
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
            self._player.mediaStatusChanged.connect(self._seek_when_loaded)
        self._player.stop()
        self._player.setSource(QUrl.fromLocalFile(str(Path(path).resolve())))
        # the media loads asynchronously: a seek is repeated once it can be done
        self._seek_to = int(start * 1000) if start > 0 else None
        if self._seek_to is not None:
            self._player.setPosition(self._seek_to)
        self._player.play()
        self.current = path
        return f"Playing {Path(path).name}" + (f" from {start:.1f} s" if start > 0 else "")

    def _seek_when_loaded(self, _status) -> None:
        if self._seek_to is not None and self._player is not None and self._player.isSeekable():
            self._player.setPosition(self._seek_to)
            self._seek_to = None

    def stop(self) -> None:
        if self._player is not None:
            self._player.stop()
