"""Background work of the time views: a clip's segment features, its pictures per segment, and
the results' strips (``avexplorer.state.time_axis.score_strips``).

``clip_segments`` encodes a clip's segments with the encoders its dataset was made with (for
datasets extracted without ``--segments``, such as the demo's shipped features; the feature cache
makes a second look free). ``clip_pictures`` decodes one small frame per segment and the sound's
spectrogram for the sync view's axes. ``SegmentJobs`` runs them when the ``TimeState`` asks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject

from avexplorer.jobs.runner import Cancelled, start
from avexplorer.state.app_state import AppState
from avexplorer.state.time_axis import (
    NO_ENCODERS,
    ClipPictures,
    ClipSegments,
    TimeState,
    score_strips,
)
from core.data.dataset import positive_attr
from core.errors import UserError

FRAME_SIZE = 64


def clip_segments(
    paths: list[str],
    attrs: dict[str, str],
    seconds: float,
    progress: Callable[[int, int], None] | None = None,
):
    """Yield {path: ClipSegments or an error message} for each clip, encoded as its dataset was;
    ``progress(done, total)`` after each (it raises to cancel)."""
    from core.features.cache import FeatureCache
    from core.features.encoders import load_encoders
    from core.features.extract import encode_path

    names = (attrs.get("audio_encoder"), attrs.get("visual_encoder"))
    if not all(names):
        raise UserError(NO_ENCODERS)
    encoders = load_encoders(*names, device="cpu")
    fps = positive_attr(attrs, "frame_rate", 1.0, "the dataset")
    for done, path in enumerate(paths, 1):
        try:
            if not Path(path).exists():
                raise UserError(f"{path}: the clip file is missing")
            f = encode_path(
                path,
                encoders.audio,
                encoders.visual,
                fps=fps,
                segments=seconds,
                cache=FeatureCache(),
                device="cpu",
            )
            if f.audio_seg is None or f.visual_seg is None:
                raise UserError(f"{path}: {'; '.join(f.notes) or 'a modality is missing'}")
            t = min(len(f.audio_seg), len(f.visual_seg))
            yield {path: ClipSegments(f.audio_seg[:t], f.visual_seg[:t], seconds, f.duration)}
        except UserError as e:
            yield {path: str(e)}
        if progress is not None:
            try:
                progress(done, len(paths))
            except Cancelled:
                yield dict.fromkeys(paths[done:])  # not encoded: asked for again when next shown
                raise


def clip_pictures(path: str, seconds: float, count: int) -> ClipPictures:
    """One frame per segment (its first sampled frame) and the log-mel spectrogram of the sound."""
    from avexplorer.jobs.thumbnails import spectrogram
    from core.features import video
    from core.features.decoder_process import isolated
    from core.features.segment_encoding import frame_groups

    frames: list[np.ndarray] = []
    try:
        # in the decoding process: a file the decoder crashes on loses its pictures, not the app
        dec = isolated(video.decode_video, path, 1.0 / seconds, FRAME_SIZE)
        if dec.frames is not None and dec.frame_times is not None:
            groups = frame_groups(dec.frame_times, count, seconds)
            frames = [dec.frames[g[0]] for g in groups]
    except UserError:
        pass  # a sound file: no pictures
    try:
        spec = spectrogram(path, seconds=count * seconds)
    except UserError:
        spec = None
    return ClipPictures(frames, spec)


class SegmentJobs(QObject):
    """Carries out the TimeState's requests in worker threads."""

    def __init__(self, state: AppState, time_state: TimeState):
        super().__init__(time_state)
        self.state, self.time = state, time_state
        time_state.segmentsRequested.connect(self.load_segments)
        time_state.picturesRequested.connect(self.load_pictures)
        time_state.stripsRequested.connect(self.score)

    def load_segments(self, paths: list[str], attrs: dict, seconds: float) -> None:
        start(
            self.state,
            "Segment features",
            clip_segments,
            paths,
            attrs,
            seconds,
            on_yield=self.time.set_segments,
            unit="clips",  # progress and Cancel in the status bar
            # the first line says why; the traceback of an unexpected error is no caption
            on_error=lambda m: self.time.set_segments(dict.fromkeys(paths, m.splitlines()[0])),
        )

    def score(self, key: tuple, model: object, query, modality: str, segments: dict) -> None:
        start(
            self.state,
            "Moments",
            score_strips,
            model,
            query,
            modality,
            segments,
            quiet=True,
            on_done=lambda batch: self.time.set_strips(key, batch),
            on_error=lambda m: self.time.strips_failed(key, list(segments), m),
        )

    def load_pictures(self, path: str, seconds: float, count: int) -> None:
        start(
            self.state,
            "Segment pictures",
            clip_pictures,
            path,
            seconds,
            count,
            quiet=True,
            on_done=lambda p: self.time.set_pictures(path, p),
            on_error=lambda _m: self.time.set_pictures(path, ClipPictures([], None)),
        )
