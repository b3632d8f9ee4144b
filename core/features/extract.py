"""From files to clip features: the streaming batch pipeline and the one-file API the app uses.

Pipeline: decoding processes (``workers`` of them, in core/features/decoder_process.py, so that
a decoder crashing on a file costs that file, not the run) hash each file, look it up in the
cache and decode only what is missing (frames at ``fps``, audio at the encoder's rate); this
process gathers a few clips' worth of frames, encodes their pictures and their sound
in two threads at once with the models it holds, writes the cache and yields one ``ClipResult``
per input path, in input order. At most a bounded window of decoded clips is in memory at any
time, never a corpus.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.features.audio import load_audio
from core.features.cache import CacheEntry, FeatureCache
from core.features.decode import DecodeSpec, Job, Prepared, prepare
from core.features.decoder_process import DecoderPool, shared_process
from core.features.encoders import (
    DEFAULT_AUDIO,
    DEFAULT_VISUAL,
    AudioEncoder,
    Encoders,
    VisualEncoder,
    load_encoders,
)
from core.features.errors import NO_STREAM, ClipError
from core.features.segment_encoding import (
    audio_segments,
    frame_rows,
    segment_keys,
    visual_segments,
)
from core.features.video import first_frame

__all__ = [
    "ClipFeatures",
    "ClipResult",
    "cache_keys",
    "decode_spec",
    "encode_path",
    "first_frame",
    "iter_features",
    "load_audio",
    "load_encoders",
]

PADDED = "audio padded"  # prefix of the note on clips whose audio was zero-padded


@dataclass(frozen=True)
class ClipFeatures:
    """Clip-level features; a modality is None when the file lacks it (``notes`` say why)."""

    audio: np.ndarray | None  # [Da] float32
    visual: np.ndarray | None  # [Dv] float32
    duration: float | None  # seconds (None for a still image)
    notes: tuple[str, ...] = ()
    # per-segment features [T, D], when asked for (``segments=``; core/data/segments.py)
    audio_seg: np.ndarray | None = None
    visual_seg: np.ndarray | None = None


@dataclass(frozen=True)
class ClipResult:
    index: int
    path: str
    features: ClipFeatures | None  # None when the file was unusable
    error: ClipError | None = None
    encoded: bool = False  # True when an encoder ran for this clip (False: all from the cache)


def decode_spec(encoders: Encoders, fps: float = 1.0, max_frames: int = 120) -> DecodeSpec:
    """How to decode for these encoders: their frame size and audio rate."""
    return DecodeSpec(
        fps=fps,
        frame_size=encoders.visual.frame_size if encoders.visual else 224,
        audio_sr=encoders.audio.sample_rate if encoders.audio else 44_100,
        max_frames=max_frames,
    )


def cache_keys(
    encoders: Encoders, spec: DecodeSpec, pad_short: bool = False
) -> tuple[str | None, str | None]:
    """(audio key, visual key): encoder name and version plus the decoding choices that change
    the features (frame rate and cap for pictures, short-clip padding for sound)."""
    a, v = encoders.audio, encoders.visual
    audio_key = f"{a.name}-{a.version}{'-padshort' if pad_short else ''}" if a else None
    visual_key = f"{v.name}-{v.version}-fps{spec.fps:g}-max{spec.max_frames}" if v else None
    return audio_key, visual_key


def iter_features(
    paths: Iterable[str | Path],
    encoders: Encoders,
    *,
    spec: DecodeSpec | None = None,
    cache: FeatureCache | None = None,
    workers: int = 1,
    pad_short: bool = False,
    batch_frames: int = 32,
    segments: float | None = None,
    isolate: bool = True,
) -> Iterator[ClipResult]:
    """One ClipResult per path, in order; bad files give a result with ``error`` set (a file the
    decoder crashes on too: decoding runs in other processes; ``isolate=False`` decodes in a
    thread of this one instead, slightly faster, for media known to be safe).

    Audio shorter than one encoder window is zero-padded when it covers at least half of one;
    shorter audio is marked missing (a note says so) unless ``pad_short`` pads it too. With
    ``segments`` (seconds) the features also hold per-segment ones (``audio_seg``, ``visual_seg``).
    """
    spec = spec or decode_spec(encoders)
    audio_key, visual_key = cache_keys(encoders, spec, pad_short)
    seg_keys = segment_keys(audio_key, visual_key, segments)
    root = str(cache.root) if cache is not None else None
    dims = (
        encoders.audio.dim if encoders.audio else None,
        encoders.visual.dim if encoders.visual else None,
    )
    jobs = (
        Job(i, str(p), spec, audio_key, visual_key, root, *seg_keys, *dims)
        for i, p in enumerate(paths)
    )
    keys = (audio_key, visual_key)
    # Pictures and sound are encoded in two threads of their own (torch releases the GIL), so
    # the two encoders run on two cores while this thread gathers the next batch; a batch is
    # handed on once both are done, and at most three wait. Fresh threads also allocate from
    # the heap keep_freed_memory tunes, whichever thread runs this generator.
    picture_lane = ThreadPoolExecutor(1, thread_name_prefix="encode-visual")
    sound_lane = ThreadPoolExecutor(1, thread_name_prefix="encode-audio")
    waiting: deque[tuple[list[Prepared], Future[_Pictures], Future[_Sound]]] = deque()

    def hand_on() -> Iterator[ClipResult]:
        batch, pictures, sound = waiting.popleft()
        yield from _results(batch, encoders, cache, keys, pictures.result(), sound.result())

    try:
        for batch in _batches(_prepared(jobs, workers, isolate), batch_frames):
            waiting.append(
                (
                    batch,
                    picture_lane.submit(_encode_visual, batch, encoders.visual, segments),
                    sound_lane.submit(_encode_sound, batch, encoders.audio, pad_short, segments),
                )
            )
            while waiting and (len(waiting) > 2 or all(f.done() for f in waiting[0][1:])):
                yield from hand_on()
        while waiting:
            yield from hand_on()
    finally:
        picture_lane.shutdown(cancel_futures=True)
        sound_lane.shutdown(cancel_futures=True)


def _batches(preps: Iterator[Prepared], batch_frames: int) -> Iterator[list[Prepared]]:
    """Consecutive clips holding about ``batch_frames`` decoded frames (or that many clips)."""
    batch: list[Prepared] = []
    frames = 0
    for prep in preps:
        batch.append(prep)
        if prep.decoded is not None and prep.decoded.frames is not None:
            frames += len(prep.decoded.frames)
        if frames >= batch_frames or len(batch) >= batch_frames:
            yield batch
            batch, frames = [], 0
    if batch:
        yield batch


def encode_path(
    path: str | Path,
    audio_encoder: str | AudioEncoder | None = DEFAULT_AUDIO,
    visual_encoder: str | VisualEncoder | None = DEFAULT_VISUAL,
    *,
    device: str = "auto",
    fps: float = 1.0,
    pad_short: bool = True,
    cache: FeatureCache | None = None,
    segments: float | None = None,
) -> ClipFeatures:
    """Features of one video, sound or image (a drag-and-drop query).

    Encoders are given by name (loaded once per process) or as instances. A short sound is
    zero-padded to one encoder window by default, since a query should not be refused for that.
    With ``segments`` (seconds) the per-segment features are filled in too. Raises ClipError when
    the file is unusable or has neither modality.
    """
    encoders = _as_encoders(audio_encoder, visual_encoder, device)
    spec = decode_spec(encoders, fps)
    result = next(
        iter_features(
            [path], encoders, spec=spec, cache=cache, pad_short=pad_short, segments=segments
        )
    )
    if result.error is not None:
        raise result.error
    assert result.features is not None
    if result.features.audio is None and result.features.visual is None:
        why = "; ".join(result.features.notes) or "nothing to encode"
        raise ClipError(path, why, NO_STREAM)
    return result.features


def _as_encoders(
    audio: str | AudioEncoder | None, visual: str | VisualEncoder | None, device: str
) -> Encoders:
    named = load_encoders(
        audio if isinstance(audio, str) else None,
        visual if isinstance(visual, str) else None,
        device,
    )
    return Encoders(
        audio=named.audio if isinstance(audio, str) else audio,
        visual=named.visual if isinstance(visual, str) else visual,
    )


# --- decoding, in decoding processes (or a thread of this process) --------------------------


def _prepared(jobs: Iterator[Job], workers: int, isolate: bool = True) -> Iterator[Prepared]:
    """``prepare`` for each job, in order.

    One worker: a thread of this process runs ahead (``_decoded_ahead``), handing each job to the
    session's decoding process (kept warm between calls: the app's file queries reuse it), or,
    with ``isolate=False``, decoding it itself, for media known to be safe (a decoder crash then
    ends this process). More workers: a pool of this call's own, ``4 * workers`` jobs in flight.
    """
    if workers <= 1:
        yield from _decoded_ahead(jobs, _prepare_isolated if isolate else prepare)
        return
    pool = DecoderPool(workers)
    window: deque[tuple[Job, Future[Prepared]]] = deque()

    def submit() -> None:
        job = next(jobs, None)
        if job is not None:
            window.append((job, pool.submit(prepare, job)))

    try:
        for _ in range(4 * workers):
            submit()
        while window:
            job, future = window.popleft()
            try:
                result = future.result()
            except BrokenProcessPool:
                # A decoding process died (FFmpeg crashing on a hostile file?). This job runs
                # again alone in a fresh process to find out whether it is the culprit; the jobs
                # that were in flight with it are sent again.
                try:
                    result = pool.retry(job.path, prepare, job)
                except ClipError as e:
                    result = Prepared(job, error=e)
                window = deque((j, pool.submit(prepare, j)) for j, _ in window)
            yield result
            submit()
    finally:
        pool.close()


def _prepare_isolated(job: Job) -> Prepared:
    """``prepare`` in the session's decoding process; a crash there is this file's error."""
    try:
        return shared_process().call(job.path, prepare, job)
    except ClipError as e:
        return Prepared(job, error=e)


def _decoded_ahead(
    jobs: Iterator[Job], decode: Callable[[Job], Prepared], budget: int = 64 << 20
) -> Iterator[Prepared]:
    """``decode`` (``prepare``, here or in the decoding process) in one thread of this process,
    running ahead of the consumer until the decoded clips it holds reach ``budget`` bytes.

    The next clips decode while the models encode: the decoding process works on its own, and
    in this process FFmpeg (through PyAV), numpy and torch release the GIL while they work. The
    decoding process is started once per session, and only the decoded arrays cross back. The
    budget lets decoding fill the next batch while the current one encodes, without ever holding
    a corpus.
    """
    ready: queue.Queue[Prepared | BaseException | None] = queue.Queue()
    held = threading.Condition()
    state = {"bytes": 0, "stop": False}

    def decode_all() -> None:
        try:
            for job in jobs:
                prep = decode(job)
                with held:
                    held.wait_for(lambda: state["stop"] or state["bytes"] < budget)
                    if state["stop"]:
                        return
                    state["bytes"] += _size(prep)
                ready.put(prep)
        except BaseException as e:  # handed to the consumer, which raises it
            ready.put(e)
        ready.put(None)

    thread = threading.Thread(target=decode_all, name="decode", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            with held:
                state["bytes"] -= _size(item)
                held.notify()
            yield item
    finally:
        with held:
            state["stop"] = True
            held.notify()
        thread.join()  # at most the clip it is decoding


def _size(prep: Prepared) -> int:
    dec = prep.decoded
    if dec is None:
        return 0
    return sum(a.nbytes for a in (dec.frames, dec.audio) if a is not None)


# --- encoding, pictures and sound in two threads --------------------------------------------


# (clip vectors, segment vectors) of a batch's pictures, by position in the batch
_Pictures = tuple[dict[int, np.ndarray], dict[int, np.ndarray]]
# (clip vectors, notes, segment vectors) of a batch's sound
_Sound = tuple[dict[int, np.ndarray], dict[int, str], dict[int, np.ndarray]]


def _encode_sound(
    batch: Sequence[Prepared], encoder: AudioEncoder | None, pad_short: bool, segments: float | None
) -> _Sound:
    vectors, notes = _encode_audio(batch, encoder, pad_short)
    return vectors, notes, _encode_audio_segments(batch, encoder, vectors, segments)


def _results(
    batch: Sequence[Prepared],
    encoders: Encoders,
    cache: FeatureCache | None,
    keys: tuple[str | None, str | None],
    pictures: _Pictures,
    sound: _Sound,
) -> Iterator[ClipResult]:
    """One ClipResult per clip of the batch, from the cache or the new vectors (then cached)."""
    audio_key, visual_key = keys
    visual_new, visual_seg = pictures
    audio_new, audio_notes, audio_seg = sound
    for i, prep in enumerate(batch):
        job = prep.job
        if prep.error is not None:
            yield ClipResult(job.index, job.path, None, prep.error)
            continue
        dec = prep.decoded
        notes: list[str] = []
        duration = dec.duration if dec is not None else None
        visual = audio = None
        if encoders.visual is not None:
            if prep.visual_hit is not None:
                visual, why = prep.visual_hit.vector, prep.visual_hit.note
                duration = duration or prep.visual_hit.duration
            else:
                visual = visual_new.get(i)
                why = None if visual is not None else (dec and dec.visual_note) or "no picture"
                _store(cache, prep, visual_key, visual, why, duration)
            if why and why not in notes:
                notes.append(why)
        if encoders.audio is not None:
            if prep.audio_hit is not None:
                audio, why = prep.audio_hit.vector, prep.audio_hit.note
                duration = duration or prep.audio_hit.duration
            else:
                audio, why = audio_new.get(i), audio_notes.get(i)
                if audio is None and why is None:
                    why = "no audio"
                _store(cache, prep, audio_key, audio, why, duration)
            if why and why not in notes:
                notes.append(why)
        seg_a = _segment_of(cache, prep, job.audio_seg_key, prep.audio_seg_hit, audio_seg.get(i))
        seg_v = _segment_of(cache, prep, job.visual_seg_key, prep.visual_seg_hit, visual_seg.get(i))
        encoded = i in visual_new or i in audio_new or i in visual_seg or i in audio_seg
        features = ClipFeatures(
            audio, visual, duration, tuple(notes), seg_a if audio is not None else None, seg_v
        )
        yield ClipResult(job.index, job.path, features, None, encoded)


def _segment_of(
    cache: FeatureCache | None,
    prep: Prepared,
    key: str | None,
    hit: CacheEntry | None,
    new: np.ndarray | None,
) -> np.ndarray | None:
    """A clip's segment features: from the cache, or newly encoded (and then cached)."""
    if key is None:
        return None
    if hit is not None:
        return hit.vector
    if new is not None:
        _store(cache, prep, key, new, None, None)
    return new


def _encode_visual(
    batch: Sequence[Prepared], encoder: VisualEncoder | None, segments: float | None = None
) -> _Pictures:
    """(clip vectors, segment vectors) of the clips that need them; each frame is encoded once."""
    if encoder is None:
        return {}, {}
    decoded = [
        i
        for i, p in enumerate(batch)
        if p.error is None and p.decoded is not None and p.decoded.frames is not None
    ]
    todo = [i for i in decoded if batch[i].visual_hit is None]
    if segments is None:
        if not todo:
            return {}, {}
        vectors = encoder.features([batch[i].decoded.frames for i in todo])  # type: ignore[union-attr]
        return dict(zip(todo, vectors, strict=True)), {}
    seg_todo = [i for i in decoded if batch[i].visual_seg_hit is None]
    both = sorted(set(todo) | set(seg_todo))
    frames = [batch[i].decoded.frames for i in both]  # type: ignore[union-attr]
    rows = dict(zip(both, frame_rows(encoder, frames), strict=True))  # type: ignore[arg-type]
    clip = {i: rows[i].mean(axis=0) for i in todo}
    seg = {}
    for i in seg_todo:
        dec = batch[i].decoded
        assert dec is not None and dec.frame_times is not None
        seg[i] = visual_segments(rows[i], dec.frame_times, dec.duration, segments)
    return clip, seg


def _encode_audio_segments(
    batch: Sequence[Prepared],
    encoder: AudioEncoder | None,
    usable: dict[int, np.ndarray],
    segments: float | None,
) -> dict[int, np.ndarray]:
    """Segment vectors of the clips whose sound is usable (encoded now or found in the cache)."""
    if encoder is None or segments is None:
        return {}
    todo = [
        i
        for i, p in enumerate(batch)
        if p.error is None
        and p.audio_seg_hit is None
        and p.decoded is not None
        and p.decoded.audio is not None
        and (i in usable or (p.audio_hit is not None and p.audio_hit.vector is not None))
    ]
    clips = [(batch[i].decoded.audio, batch[i].decoded.duration) for i in todo]  # type: ignore[union-attr]
    return dict(zip(todo, audio_segments(encoder, clips, segments), strict=True))  # type: ignore[arg-type]


def _encode_audio(
    batch: Sequence[Prepared], encoder: AudioEncoder | None, pad_short: bool
) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """Vectors for clips with enough audio; a note for each clip whose audio is unusable (no
    vector) or was padded (with a vector)."""
    if encoder is None:
        return {}, {}
    todo: list[int] = []
    waves: list[np.ndarray] = []
    notes: dict[int, str] = {}
    padded: dict[int, str] = {}
    need = int(np.ceil(encoder.window_seconds * encoder.sample_rate))
    for i, p in enumerate(batch):
        if p.error is not None or p.audio_hit is not None or p.decoded is None:
            continue
        y, note = p.decoded.audio, p.decoded.audio_note
        if y is None:
            notes[i] = note or "no audio"
            continue
        if len(y) < need:
            # Half a window of sound still makes a fair embedding once zero-padded (aisfx pads
            # too); less than that is mostly padding, so it is refused unless asked for.
            seconds = len(y) / encoder.sample_rate
            if not pad_short and len(y) < need / 2:
                notes[i] = (
                    f"audio too short: {seconds:.2f} s is less than half of one "
                    f"{encoder.name} window ({encoder.window_seconds:.2f} s; --pad-short pads it)"
                )
                continue
            y = np.concatenate([y, np.zeros(need - len(y), np.float32)])
            padded[i] = (
                f"{PADDED}: {seconds:.2f} s zero-padded to one {encoder.name} window "
                f"({encoder.window_seconds:.2f} s)"
            )
        todo.append(i)
        waves.append(y)
    vectors = encoder.features(waves) if waves else []
    return dict(zip(todo, vectors, strict=True)), notes | padded


def _store(
    cache: FeatureCache | None,
    prep: Prepared,
    key: str | None,
    vector: np.ndarray | None,
    note: str | None,
    duration: float | None,
) -> None:
    if cache is None or prep.digest is None or key is None:
        return
    cache.put(prep.digest, key, CacheEntry(vector, note, duration))
