"""Audio decoding: any file's first audio track as mono float32 at a chosen sample rate.

FFmpeg's resampler (through PyAV's AudioResampler) converts the sample format and the rate for
every codec FFmpeg reads; the downmix to mono is ours, a plain average of the channels, because
FFmpeg's stereo-to-mono matrix is (L + R) / sqrt(2), 3 dB louder than the (L + R) / 2 that
Essentia's MonoLoader (aisfx's training inputs) and most tools use.

The resampler gives interleaved samples (one plane), never one plane per channel: PyAV counts a
frame's planes by walking FFmpeg's plane pointers until a null one, and a frame of eight planes
or more (7.1 sound and up) has none after its last: it read past the end and crashed the process.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from core.features.avio import (
    DECODE_ERRORS,
    audio_stream,
    check_complete,
    decode_failure,
    expected_duration,
    open_container,
    require_decodable,
)
from core.features.errors import NO_AUDIO, ClipError


class AudioCollector:
    """Feeds decoded audio frames through one resampler and gathers mono float32 samples."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        # interleaved float at the target rate, channels kept (layout None) for our own downmix
        self._resampler = av.AudioResampler(format="flt", rate=sample_rate)
        self._chunks: list[np.ndarray] = []
        self.samples = 0

    def add(self, frame: av.AudioFrame) -> None:
        for out in self._resampler.resample(frame):
            self._take(out)

    def finish(self) -> np.ndarray:
        for out in self._resampler.resample(None):  # flush the resampler's delay line
            self._take(out)
        if not self._chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._chunks).astype(np.float32, copy=False)

    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate

    def _take(self, frame: av.AudioFrame) -> None:
        channels = frame.layout.nb_channels
        x = frame.to_ndarray().reshape(-1, channels)  # [samples, channels]
        x = x[:, 0] if channels == 1 else x.mean(axis=1, dtype=np.float32)
        self._chunks.append(x)
        self.samples += len(x)


def load_audio(path: str | Path, sr: int = 44_100) -> np.ndarray:
    """The first audio track of a sound or video file, mono float32 at ``sr`` Hz (for playback
    and for the audio encoders). ClipError when there is none or it cannot be decoded."""
    with open_container(path) as container:
        stream = require_decodable(
            path, audio_stream(container), "has no audio track", NO_AUDIO, "audio"
        )
        collector = AudioCollector(sr)
        try:
            for frame in container.decode(stream):
                collector.add(frame)
        except DECODE_ERRORS as e:
            raise decode_failure(path, "audio", collector.seconds, e) from None
        y = collector.finish()
        check_complete(path, "audio", expected_duration(container, stream), len(y) / sr)
    if len(y) == 0:
        raise ClipError(path, "its audio track holds no samples", NO_AUDIO)
    return y
