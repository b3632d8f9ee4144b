"""Video decoding: frames sampled at a fixed rate (and the audio track) in one demux pass."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from core.features.audio import AudioCollector
from core.features.avio import (
    DECODE_ERRORS,
    Decoded,
    audio_stream,
    check_complete,
    decode_failure,
    expected_duration,
    header_duration,
    open_container,
    require_decodable,
    video_stream,
)
from core.features.errors import CORRUPT, NO_VISUAL, ClipError
from core.features.image import center_crop, load_image, scaled_size
from core.features.media import kind_of


def frame_to_square(frame: av.VideoFrame, size: int) -> np.ndarray:
    """RGB [size, size, 3] uint8: FFmpeg's swscale scales (area filter, good for shrinking) and
    converts to RGB in one step, then the long side is centre-cropped."""
    w, h = scaled_size(frame.width, frame.height, size)
    img = frame.to_ndarray(width=w, height=h, format="rgb24", interpolation="AREA")
    return center_crop(img, size)


class FrameSampler:
    """Keeps one frame every ``1 / fps`` seconds (the first frame always), scaled and cropped.

    Times are relative to the stream's first frame. With ``max_frames`` and a known duration the
    step widens so a long video still gives at most that many frames, spread over all of it.
    ``may_keep`` tells, from a packet's time, whether its frame could be one to keep: the decoder
    may skip the others when no other frame refers to them (see ``decode_video``).
    """

    def __init__(
        self, fps: float, size: int, duration: float = 0.0, max_frames: int = 0, rate: float = 25
    ) -> None:
        step = 1.0 / fps
        if max_frames > 0 and duration > step * max_frames:
            step = duration / max_frames
        self.step = step
        self.size = size
        self.max_frames = max_frames
        self.rate = rate
        self.frames: list[np.ndarray] = []
        self.times: list[float] = []  # of the kept frames, seconds from the first frame
        self.seconds = 0.0  # decoded length so far
        self._t0: float | None = None
        self._timed = False  # the frames carry timestamps (else they are counted)
        self._next = 0.0
        self._count = 0

    def offer(self, frame: av.VideoFrame) -> None:
        t = frame.time if frame.time is not None else self._count / self.rate
        self._count += 1
        if self._t0 is None:
            self._t0, self._timed = t, frame.time is not None
        t -= self._t0
        self.seconds = max(self.seconds, t + 1.0 / self.rate)
        if self.max_frames and len(self.frames) >= self.max_frames:
            return
        if t + 1e-6 >= self._next:
            self.frames.append(frame_to_square(frame, self.size))
            self.times.append(t)
            while self._next <= t + 1e-6:
                self._next += self.step

    def may_keep(self, time: float) -> bool:
        """Whether the frame of a packet stamped ``time`` could be kept (True until the first frame
        has set the clock). Counts the packet's frame into ``seconds`` either way, so a skipped
        last frame still counts in the clip's length."""
        if self._t0 is None or not self._timed:
            return True
        t = time - self._t0
        self.seconds = max(self.seconds, t + 1.0 / self.rate)
        return t + 1e-6 >= self._next - 1.0 / self.rate  # a frame's margin for odd timestamps


def decode_video(
    path: str | Path,
    fps: float = 1.0,
    size: int = 224,
    audio_sr: int | None = None,
    want_frames: bool = True,
    max_frames: int = 0,
) -> Decoded:
    """Frames at ``fps`` (at least one) and, with ``audio_sr``, the audio track of a video file.

    A missing or undecodable audio track is not an error: ``audio`` is None and ``audio_note``
    says why, because the picture alone is still worth keeping (and reporting).
    """
    with open_container(path) as container:
        v = require_decodable(
            path, video_stream(container), "has no video stream", NO_VISUAL, "video"
        )
        a = audio_stream(container) if audio_sr else None
        out = Decoded()
        if audio_sr and a is None:
            out.audio_note = "no audio track"
        elif a is not None and a.codec_context is None:
            out.audio_note = "its audio codec cannot be decoded by this FFmpeg build"
            a = None
        expected = expected_duration(container, v)
        rate = float(v.guessed_rate or v.average_rate or 25)
        sampler = FrameSampler(fps, size, expected, max_frames, rate)
        collector = AudioCollector(audio_sr) if (a is not None and audio_sr) else None
        streams = [s for s in (v if want_frames else None, a) if s is not None]
        video = v.codec_context
        time_base = float(v.time_base) if v.time_base is not None else None
        try:
            # demux() with no stream would read them all: nothing wanted, nothing to read
            for packet in container.demux(*streams) if streams else ():
                if packet.stream is v and packet.pts is not None and time_base is not None:
                    # At 1 fps from 25, most frames are not kept: the decoder skips those no
                    # other frame is predicted from (B-frames, mostly). Kept frames decode
                    # exactly as in a full pass, since every frame they depend on still decodes.
                    keep = sampler.may_keep(packet.pts * time_base)
                    video.skip_frame = "DEFAULT" if keep else "NONREF"
                for frame in packet.decode():
                    if packet.stream is v:
                        sampler.offer(frame)
                    elif collector is not None:
                        collector.add(frame)
        except DECODE_ERRORS as e:
            at = sampler.seconds if want_frames else collector.seconds if collector else 0.0
            raise decode_failure(path, "video" if want_frames else "audio", at, e) from None
        if want_frames:
            if not sampler.frames:
                raise ClipError(path, "no video frame could be decoded", CORRUPT)
            check_complete(path, "video", expected, sampler.seconds)
            out.frames = np.stack(sampler.frames)
            out.frame_times = np.array(sampler.times)
        if collector is not None:
            out.audio = collector.finish()
            if len(out.audio) == 0:
                out.audio, out.audio_note = None, "its audio track holds no samples"
            elif not want_frames:
                check_complete(path, "audio", expected_duration(container, a), collector.seconds)
        out.duration = (
            max(
                sampler.seconds if want_frames else expected,
                collector.seconds if collector is not None else 0.0,
            )
            or None
        )
    return out


def first_frame(path: str | Path, size: int = 128) -> np.ndarray:
    """Thumbnail for the app's tables: the first picture of a video or an image, [size, size, 3]
    uint8 RGB (centre-cropped square). ClipError for sound files and unreadable files."""
    if kind_of(path) == "image":
        return load_image(path, size)
    with open_container(path) as container:
        v = require_decodable(
            path, video_stream(container), "has no picture (a sound file?)", NO_VISUAL, "video"
        )
        try:
            for frame in container.decode(v):
                return frame_to_square(frame, size)
        except DECODE_ERRORS as e:
            raise decode_failure(path, "video", 0.0, e) from None
    raise ClipError(path, "no video frame could be decoded", CORRUPT)


def thumbnail(path: str | Path, size: int = 128) -> tuple[np.ndarray, float | None]:
    """``first_frame`` and the duration the file's header gives (None when unknown), in one call
    for the app's tables, which fetch both in a decoding process."""
    return first_frame(path, size), header_duration(path)
