"""Pictures of clips: first frames and durations for the tables, spectrograms for the sound.

Plain functions run in worker threads; they return QImages (safe to build off the GUI thread).
Files are decoded in core's decoding process (``core.features.decoder_process.isolated``): a file
the decoder crashes on loses its picture, never the app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from PySide6.QtGui import QImage

from avexplorer.state.catalog import SPECTROGRAM_HOP, SPECTROGRAM_SR

SPECTROGRAM_MELS = 64


def thumbnails(paths: list[str], size: int = 48, batch: int = 32) -> Iterator[tuple[dict, dict]]:
    """Yield ({path: QImage}, {path: duration s}) in batches for clips that exist on disk."""
    decoding = _decoding()
    if decoding is None:
        return
    isolated, video = decoding
    images: dict[str, QImage] = {}
    durations: dict[str, float] = {}
    for i, path in enumerate(paths):
        if Path(path).exists():
            try:
                frame, duration = isolated(video.thumbnail, path, size)
                images[path] = rgb_image(frame)
                if duration is not None:
                    durations[path] = duration
            except Exception:  # one unreadable clip must not stop the others
                pass
        if len(images) >= batch or i == len(paths) - 1:
            if images or durations:
                yield images, durations
            images, durations = {}, {}


def rgb_image(rgb: np.ndarray) -> QImage:
    """A QImage owning a copy of an [h, w, 3] uint8 array."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def _decoding() -> tuple[Callable[..., Any], ModuleType] | None:
    """(``isolated``, core's video module), or None when core.features is not installed. The
    decoders are looked up on the module at each call, not bound here."""
    try:
        from core.features import video
        from core.features.decoder_process import isolated
    except ImportError:
        return None
    return isolated, video


def spectrogram(path: str, seconds: float = 10.0) -> np.ndarray:
    """[n_mels, frames] log-mel energies (dB, low frequencies in the last row) of a file's sound.

    ``ClipError`` when the file has no decodable sound.
    """
    from core.features import audio
    from core.features.decoder_process import isolated
    from core.features.mel import power_mel

    y = isolated(audio.load_audio, path, SPECTROGRAM_SR)[: int(seconds * SPECTROGRAM_SR)]
    mel = power_mel(y, SPECTROGRAM_SR, 512, SPECTROGRAM_HOP, SPECTROGRAM_MELS)
    db = 10 * np.log10(np.maximum(mel, 1e-10))
    return db.T[::-1]


def spectrogram_image(path: str, height: int = SPECTROGRAM_MELS, floor_db: float = 70) -> QImage:
    """The spectrogram as a viridis picture: time left to right, pitch upwards, top 70 dB."""
    import pyqtgraph as pg

    db = spectrogram(path)
    lo = db.max() - floor_db
    norm = np.clip((db - lo) / floor_db, 0, 1)
    lut = pg.colormap.get("viridis").getLookupTable(0.0, 1.0, 256, alpha=False)
    rgb = lut[(norm * 255).astype(np.uint8)]
    image = rgb_image(rgb)
    return image.scaled(max(image.width(), 1), height) if image.height() != height else image


def preview_image(path: str, size: int = 128) -> QImage | None:
    """A file's picture: its first frame (video, image), else its sound's spectrogram."""
    decoding = _decoding()
    if decoding is not None:
        isolated, video = decoding
        try:
            return rgb_image(isolated(video.first_frame, path, size))
        except Exception:  # a sound file, or no decodable picture: try its sound
            pass
    try:
        return spectrogram_image(path)
    except Exception:
        return None


def spectrograms(paths: list[str]) -> Iterator[dict[str, QImage | None]]:
    """Yield {path: spectrogram picture, or None for a clip without decodable sound}."""
    for path in paths:
        try:
            yield {path: spectrogram_image(path) if Path(path).exists() else None}
        except Exception:  # no sound track, or an unreadable file
            yield {path: None}
