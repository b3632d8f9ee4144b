"""Opening files with PyAV (FFmpeg) and turning its failures into ClipErrors that name the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from core.features.errors import CODEC, CORRUPT, ClipError
from core.features.media import check_nonempty, open_failure

# Errors FFmpeg (through PyAV) raises on damaged input. ValueError covers InvalidDataError,
# which is both an FFmpegError and a ValueError, and a resampler fed inconsistent frames.
DECODE_ERRORS = (av.FFmpegError, ValueError, OSError)


@dataclass
class Decoded:
    """What one file gave: sampled frames, the audio track, the duration, and notes.

    ``frames`` is [T, S, S, 3] uint8 RGB (None when the file has no picture), ``audio`` mono
    float32 at the requested rate (None when there is no usable audio; ``audio_note`` says why,
    as ``visual_note`` does for a file without a picture).
    """

    frames: np.ndarray | None = None
    frame_times: np.ndarray | None = None  # [T] seconds from the first frame (for segments)
    audio: np.ndarray | None = None
    duration: float | None = None
    audio_note: str | None = None
    visual_note: str | None = None


def open_container(path: str | Path) -> av.container.InputContainer:
    check_nonempty(path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except DECODE_ERRORS as e:
        raise open_failure(path, e) from None
    if not container.streams.audio and not container.streams.video:
        # An MP4 cut before its index opens with no streams at all (a partial download); saying
        # "no audio track" would send the user looking for a mute clip.
        container.close()
        raise ClipError(
            path, "truncated or corrupt: no audio or video track can be read from it", CORRUPT
        )
    return container


def header_duration(path: str | Path) -> float | None:
    """A file's duration from its container header, in seconds (None when unknown)."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            return container.duration / 1_000_000 if container.duration else None
    except DECODE_ERRORS:
        return None


def video_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    """The first real video stream; cover art in music files (attached pictures) is not video."""
    for s in container.streams.video:
        if not s.disposition & av.stream.Disposition.attached_pic:
            return s
    return None


def audio_stream(container: av.container.InputContainer) -> av.AudioStream | None:
    return container.streams.audio[0] if container.streams.audio else None


def require_decodable(
    path: str | Path, stream: av.stream.Stream | None, missing: str, missing_kind: str, what: str
) -> av.stream.Stream:
    """``stream``, or a ClipError naming the file when it is absent (``missing``, a reason of
    kind ``missing_kind``) or its ``what`` ("audio", "video") codec has no decoder here."""
    if stream is None:
        raise ClipError(path, missing, missing_kind)
    if stream.codec_context is None:
        raise ClipError(path, f"its {what} codec cannot be decoded by this FFmpeg build", CODEC)
    return stream


def expected_duration(container: av.container.InputContainer, stream: av.stream.Stream) -> float:
    """Duration the header announces, in seconds (0 when unknown)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return 0.0


def check_complete(path: str | Path, what: str, expected: float, got: float) -> None:
    """A file whose header promises much more than decodes was cut short (a partial download).

    The tolerance absorbs encoder padding and rounding of short clips.
    """
    if expected > 0 and got < 0.9 * expected - 0.5:
        raise ClipError(
            path,
            f"truncated: the header says {expected:.1f} s of {what} but only {got:.1f} s decode",
            CORRUPT,
        )


def decode_failure(path: str | Path, what: str, at: float, error: Exception) -> ClipError:
    msg = getattr(error, "strerror", None) or str(error)
    return ClipError(
        path, f"truncated or corrupt: decoding the {what} failed at {at:.1f} s ({msg})", CORRUPT
    )
