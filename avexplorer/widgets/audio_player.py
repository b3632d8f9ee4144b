"""Play a clip's sound track with QtMultimedia, created on first use.

QtMultimedia loads its FFmpeg backend when first touched (a noticeable pause), so nothing is built
until the user presses Play. With no audio output device (a server, a container, a CI runner)
``play`` returns a message instead of raising, and the caller shows it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QUrl


class AudioPlayer(QObject):
    """With the app's ``state``, a demo clip not built yet is asked for and played once built."""

    def __init__(self, parent: QObject | None = None, state: Any = None):
        super().__init__(parent)
        self._player = None
        self._output = None
        self._seek_to: int | None = None  # ms, applied once the media can seek
        self._state = state
        self._waiting: tuple[str, float] | None = None  # a clip being built, to play when ready
        self.current: str | None = None
        if state is not None:
            state.signals.clipReady.connect(self._clip_ready)

    def play(self, path: str | None, start: float = 0.0) -> str:
        """Start playing ``path`` (from ``start`` seconds); returns a one-line status message."""
        if not path:
            return "This item has no clip file (features only), so there is nothing to play."
        if not Path(path).exists():
            if self._state is not None and self._state.catalog.request_clip(path):
                self._waiting = (path, start)
                return f"{Path(path).name}: building this demo clip; it plays when ready."
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

    def play_moment(self, path: str | None, seconds: float) -> str:
        """``play`` from a moment, its message naming the clip and the moment when it cannot."""
        text = self.play(path, seconds)
        if path is not None and not text.startswith("Playing"):
            text = f"{Path(path).name} at {seconds:.1f} s: {text}"
        return text

    def _clip_ready(self, path: str) -> None:
        if self._waiting is not None and self._waiting[0] == path:
            _, start = self._waiting
            self._waiting = None
            self.play(path, start)

    def _seek_when_loaded(self, _status) -> None:
        if self._seek_to is not None and self._player is not None and self._player.isSeekable():
            self._player.setPosition(self._seek_to)
            self._seek_to = None

    def stop(self) -> None:
        if self._player is not None:
            self._player.stop()
