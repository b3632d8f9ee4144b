"""Decoding one file of any kind, and the per-clip job a decoding process runs.

``prepare`` is what runs in the worker processes: hash the file, look its features up in the
cache, and decode only what the cache lacks. Everything it returns is plain data (numpy arrays,
strings, ClipError) so it crosses process boundaries cheaply; encoding stays in the main process,
where the models live.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.features.audio import load_audio
from core.features.avio import Decoded
from core.features.cache import CacheEntry, FeatureCache, file_digest
from core.features.errors import NO_VISUAL, ClipError
from core.features.image import load_image
from core.features.media import check_nonempty, kind_of
from core.features.video import decode_video


@dataclass(frozen=True)
class DecodeSpec:
    fps: float = 1.0  # frames sampled per second of video
    frame_size: int = 224  # square side the visual encoder takes
    audio_sr: int = 44_100  # the audio encoder's rate
    max_frames: int = 120  # longer videos are sampled more sparsely, spread over the whole clip


def decode_file(
    path: str | Path, spec: DecodeSpec, want_frames: bool = True, want_audio: bool = True
) -> Decoded:
    """Frames and/or audio of a video, a sound (no frames) or a still image (one frame).

    A file named like a video that holds only sound (an .mp4 with one audio stream) is decoded
    as a sound rather than rejected.
    """
    kind = kind_of(path)
    if kind == "image":
        out = Decoded(frames=load_image(path, spec.frame_size)[None] if want_frames else None)
        out.frame_times = np.zeros(1) if want_frames else None
        out.audio_note = "a still image has no sound"
        return out
    if kind == "audio":
        return _sound(path, spec, want_audio)
    try:
        return decode_video(
            path,
            spec.fps,
            spec.frame_size,
            spec.audio_sr if want_audio else None,
            want_frames=want_frames,
            max_frames=spec.max_frames,
        )
    except ClipError as e:
        if e.kind != NO_VISUAL:
            raise
        return _sound(path, spec, want_audio)


def _sound(path: str | Path, spec: DecodeSpec, want_audio: bool) -> Decoded:
    out = Decoded()
    if want_audio:
        out.audio = load_audio(path, spec.audio_sr)
        out.duration = len(out.audio) / spec.audio_sr
    else:
        check_nonempty(path)
    out.visual_note = "a sound file has no picture"
    return out


@dataclass(frozen=True)
class Job:
    index: int
    path: str
    spec: DecodeSpec
    audio_key: str | None  # cache keys; None when that modality is not wanted
    visual_key: str | None
    cache_root: str | None  # None: no cache
    # cache keys of the per-segment features (core/features/segment_encoding.py), when wanted
    audio_seg_key: str | None = None
    visual_seg_key: str | None = None
    # the encoders' widths: a cached vector of another width is ignored (encoded again)
    audio_dim: int | None = None
    visual_dim: int | None = None


@dataclass
class Prepared:
    job: Job
    digest: str | None = None
    audio_hit: CacheEntry | None = None
    visual_hit: CacheEntry | None = None
    audio_seg_hit: CacheEntry | None = None
    visual_seg_hit: CacheEntry | None = None
    decoded: Decoded | None = None
    error: ClipError | None = None


def prepare(job: Job) -> Prepared:
    """Hash, look up, decode what is missing. Never raises for a bad file: ``error`` says why."""
    out = Prepared(job)
    try:
        check_nonempty(job.path)
        if job.cache_root is not None:
            cache = FeatureCache(job.cache_root)
            out.digest = file_digest(job.path)
            if job.audio_key:
                out.audio_hit = cache.get(out.digest, job.audio_key, job.audio_dim)
            if job.visual_key:
                out.visual_hit = cache.get(out.digest, job.visual_key, job.visual_dim)
            if job.audio_seg_key:
                out.audio_seg_hit = cache.get(
                    out.digest, job.audio_seg_key, job.audio_dim, segments=True
                )
            if job.visual_seg_key:
                out.visual_seg_hit = cache.get(
                    out.digest, job.visual_seg_key, job.visual_dim, segments=True
                )
        want_audio = bool(job.audio_key) and (
            out.audio_hit is None or (bool(job.audio_seg_key) and out.audio_seg_hit is None)
        )
        want_frames = bool(job.visual_key) and (
            out.visual_hit is None or (bool(job.visual_seg_key) and out.visual_seg_hit is None)
        )
        if want_audio or want_frames:
            out.decoded = decode_file(job.path, job.spec, want_frames, want_audio)
    except ClipError as e:
        out.error = e
    except OSError as e:
        out.error = ClipError(job.path, f"cannot read ({e.strerror or e})")
    return out
