"""Small real media files made with PyAV for the feature tests (and the extract benchmark).

mpeg4 video + AAC audio is used because every PyAV wheel bundles both encoders.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def make_video(
    path: Path,
    seconds: float = 3.0,
    *,
    audio: bool = True,
    fps: int = 10,
    size: int = 64,
    height: int | None = None,
    tone: float = 440.0,
    color: tuple[int, int, int] = (200, 40, 40),
    sr: int = 22_050,
    faststart: bool = False,
    codec: str = "mpeg4",
) -> Path:
    """A clip whose picture (a coloured square moving over a gradient) and sound (a tone with
    a decaying envelope) depend on ``color`` and ``tone``, so classes can differ."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        video = out.add_stream(codec, rate=fps)
        h = height or size
        video.width, video.height = size, h
        video.pix_fmt = "yuv420p"
        sound = None
        if audio:  # mono and the fast coder: AAC's default search is the slow part of a test
            sound = out.add_stream("aac", rate=sr, options={"aac_coder": "fast"})
            sound.layout = "mono"
        ramp = np.linspace(0, 255, size, dtype=np.float32)
        for i in range(round(seconds * fps)):
            img = np.empty((h, size, 3), np.uint8)
            img[:] = (ramp[None, :, None] * 0.3).astype(np.uint8)
            x = (i * 3) % (size // 2)
            img[h // 4 : h // 2, x : x + size // 4] = color
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None:
            y = tone_wave(seconds, tone, sr)
            _write_audio(out, sound, y, sr)
    return path


def make_wav(path: Path, seconds: float = 3.0, tone: float = 440.0, sr: int = 22_050) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=sr)
        stream.layout = "mono"
        _write_audio(out, stream, tone_wave(seconds, tone, sr), sr)
    return path


def make_png(path: Path, size: int = 48, color: tuple[int, int, int] = (30, 160, 60)) -> Path:
    import cv2

    img = np.zeros((size, size + 16, 3), np.uint8)
    img[:, : size // 2] = color[::-1]  # OpenCV writes BGR
    cv2.imwrite(str(path), img)
    return path


def tone_wave(seconds: float, tone: float, sr: int) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    envelope = 0.2 + 0.8 * np.exp(-3 * (t % 1.0))
    return (0.3 * envelope * np.sin(2 * np.pi * tone * t)).astype(np.float32)


def _write_audio(out, stream, y: np.ndarray, sr: int) -> None:
    layout = "mono"
    fmt = stream.codec_context.codec.audio_formats[0].name if stream.codec_context else "s16"
    step = 1024
    for k in range(0, len(y), step):
        chunk = y[k : k + step]
        if fmt.startswith("s16"):
            data = (chunk * 32767).astype(np.int16)[None, :]
        else:
            data = chunk[None, :]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout=layout)
        frame.sample_rate = sr
        frame.pts = k
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def make_bad_files(folder: Path) -> dict[str, Path]:
    """One file per failure a real folder holds, keyed by the case name."""
    folder.mkdir(parents=True, exist_ok=True)
    good = make_video(folder / "_source.mp4", 3.0)
    data = good.read_bytes()
    good.unlink()
    cases = {
        "empty": folder / "empty.mp4",
        "text": folder / "notes.mp4",
        "truncated": folder / "truncated.mp4",
        "codec": folder / "weird_codec.avi",
        "no_audio": folder / "silent.mp4",
        "short": folder / "short.mp4",
    }
    cases["empty"].write_bytes(b"")
    cases["text"].write_text("this is a text file, not a video\n")
    cases["truncated"].write_bytes(data[: len(data) // 2])  # moov at the end: header lost
    avi = make_video(folder / "_codec.avi", 3.0)
    # The AVI fourcc is all FFmpeg knows the codec by: an unknown one leaves no decoder.
    cases["codec"].write_bytes(avi.read_bytes().replace(b"FMP4", b"ZZZZ"))
    avi.unlink()
    make_video(cases["no_audio"], 3.0, audio=False)
    make_video(cases["short"], 0.5)
    return cases


def make_clip_folder(
    root: Path, n: int = 40, classes: int = 4, size: int = 320, seed: int = 0
) -> Path:
    """``n`` clips of 2-5 s (25 fps, size x 3/4 size, with sound) in ``classes`` class folders,
    the set docs/features.md's speed figures were measured on."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        c = i % classes
        folder = root / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        color = tuple(int(x) for x in rng.integers(0, 256, 3))
        make_video(
            folder / f"clip{i:03d}.mp4",
            float(rng.uniform(2.0, 5.0)),
            fps=25,
            size=size,
            height=size * 3 // 4,
            color=color,  # type: ignore[arg-type]
            tone=220.0 * (1 + c),
        )
    return root


def make_surround(
    path: Path,
    codec: str,
    layout: str = "7.1",
    seconds: float = 2.0,
    *,
    video: bool = False,
    tone: float = 440.0,
    sr: int = 48_000,
) -> Path:
    """A sound (or, with ``video``, a clip) of many channels, each the same tone at its own gain,
    so their average is known: ``surround_mean(tone_wave(...))``. Written as interleaved samples
    that the encoder converts to its own layout."""
    with av.open(str(path), "w") as out:
        picture = None
        if video:
            picture = out.add_stream("mpeg4", rate=10)
            picture.width = picture.height = 64
            picture.pix_fmt = "yuv420p"
        sound = out.add_stream(codec, rate=sr)
        sound.layout = layout
        channels = sound.codec_context.layout.nb_channels
        s16 = sound.codec_context.codec.audio_formats[0].name.startswith("s16")
        y = tone_wave(seconds, tone, sr)
        gains = surround_gains(channels)
        if picture is not None:
            for i in range(round(seconds * 10)):
                img = np.full((64, 64, 3), 20 * (i % 10), np.uint8)
                for packet in picture.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(packet)
            for packet in picture.encode():
                out.mux(packet)
        step = sound.codec_context.frame_size or 1024
        for k in range(0, len(y), step):
            block = y[k : k + step, None] * gains[None, :]  # [samples, channels]
            data = (block * 32767).astype(np.int16) if s16 else block.astype(np.float32)
            frame = av.AudioFrame.from_ndarray(
                data.reshape(1, -1), format="s16" if s16 else "flt", layout=layout
            )
            frame.sample_rate = sr
            frame.pts = k
            for packet in sound.encode(frame):
                out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)
    return path


def surround_gains(channels: int) -> np.ndarray:
    """Each channel's gain in ``make_surround``: from 1 down to 0.3, so a downmix that kept one
    channel, or summed them, would be told from the average."""
    return np.linspace(1.0, 0.3, channels, dtype=np.float32)


def segfault() -> None:
    """A real crash of this process (a read of address 0), as FFmpeg crashing on a file would."""
    import ctypes

    ctypes.string_at(0)


def crashing_prepare(job):
    """``core.features.decode.prepare`` that crashes its process on files named *crash*."""
    from core.features.decode import prepare

    if "crash" in Path(job.path).name:
        segfault()
    return prepare(job)


def crashing_thumbnail(path, *args):
    """``core.features.video.thumbnail`` that crashes its process on files named *crash*."""
    from core.features.video import thumbnail

    if "crash" in Path(path).name:
        segfault()
    return thumbnail(path, *args)


def crashing_load_audio(path, *args):
    """``core.features.audio.load_audio`` that crashes its process on files named *crash*."""
    from core.features.audio import load_audio

    if "crash" in Path(path).name:
        segfault()
    return load_audio(path, *args)
