"""The built-in demo dataset: handwritten digits that are spoken in their clip's audio track.

Each clip (2.4 s, 112x112, 25 fps, h264 + aac in .mp4) shows one 20x20 digit of OpenCV's
``digits.png`` drifting, turning and scaling slightly on a noisy background, while a recording of
the same digit, spoken by one of six voice sets (Debian's asterisk sound packages), plays at a
random offset with random speed, tempo, gain and background noise.

Split design (see ``docs/demo.md``): the sheet has no writer ids, so disjoint column ranges stand
in for writers (train, val and test never share a sheet column), and the test split is spoken by a
voice that no train or val clip uses. Everything random flows from one seed; each clip has its own
generator, so any subset of clips can be rebuilt alone and comes out identical.

The clips are not shipped: :func:`demo_clips_dir` builds them once into a cache folder (about a
minute on one core; a pure function, fit for a worker thread). The features of the clips are
shipped in ``resources/demo/features.h5`` so the demo opens at once, and their first pictures in
``resources/demo/thumbnails.jpg`` so its table shows them before any clip is built.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from core.data.dataset import AVDataset, DataError, Split, load_h5

RESOURCES_DIR = Path(__file__).resolve().parents[2] / "resources"
DEMO_DIR = RESOURCES_DIR / "demo"
SOURCES_DIR = DEMO_DIR / "sources"
CLIPS_ENV = "AVEXPLORER_DEMO_CLIPS"  # folder to hold the demo clips, instead of the user cache

CLASS_NAMES = tuple(str(d) for d in range(10))
SPLIT_NAMES = ("train", "val", "test")
SHEET_ROWS_PER_CLASS = 5  # digits.png: 50 rows x 100 columns of 20x20 digits, 5 rows per class
SHEET_COLS = 100
GLYPH = 20
ALL_VOICES = (
    "en_US_f_Allison",
    "es_MX_f_Allison",  # the same speaker as en_US_f_Allison: keep both on one side of a split
    "fr_CA_f_June",
    "it_IT_f_Menardi",
    "it_IT_m_Carlo",
    "ru_RU_f_IvrvoiceRU",
)
VOICE_CREDITS = {  # written into each clip's metadata; resources/ATTRIBUTION.md has the full text
    "en_US_f_Allison": "Allison Smith, http://www.theivrvoice.com (CC BY-SA 3.0)",
    "es_MX_f_Allison": "Allison Smith, http://www.theivrvoice.com (CC BY-SA 3.0)",
    "fr_CA_f_June": "June Wallack, http://www.junewallack.com (CC BY-SA 3.0)",
    "it_IT_f_Menardi": "Marco Menardi and Paola Dal Zot, http://www.voip.ammdomus.it "
    "(CC BY-SA 3.0 IT)",
    "it_IT_m_Carlo": "Carlo Flora, http://www.segreterietelefoniche.it (CC BY 3.0)",
    "ru_RU_f_IvrvoiceRU": "Maxim Topal, http://www.ivrvoice.ru (CC BY 3.0)",
}
BUILD_VERSION = 3  # bump whenever rendering changes, so cached clips are rebuilt


@dataclass(frozen=True)
class DemoSpec:
    """Everything that decides the clips; two equal specs give byte-identical clips."""

    seed: int = 0
    per_class: int = 60
    classes: tuple[int, ...] = tuple(range(10))
    # 2.4 s: one aisfx analysis window (2.3 s) fits, so the audio encoder sees no zero padding
    seconds: float = 2.4
    # the speech ends this long before the clip does (covers the aac priming delay, so the
    # whole word stays inside the first 2.3 s)
    tail_seconds: float = 0.25
    size: int = 112
    fps: int = 25
    sample_rate: int = 16000
    # fraction of each class's clips in val and test (train gets the rest)
    val_fraction: float = 0.15
    test_fraction: float = 0.2
    # sheet columns (writer proxies) per split: [start, stop)
    writer_cols: dict[str, tuple[int, int]] = field(
        default_factory=lambda: {"train": (0, 64), "val": (64, 80), "test": (80, 100)}
    )
    test_voices: tuple[str, ...] = ("it_IT_m_Carlo",)

    def voices(self, split: str) -> tuple[str, ...]:
        if split == "test":
            return self.test_voices
        return tuple(v for v in ALL_VOICES if v not in self.test_voices)

    def key(self) -> str:
        """Short hash naming this spec's clip set (with the build version)."""
        text = json.dumps({"version": BUILD_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ClipPlan:
    """One clip: what it shows and says, and the seed of its own nuisance variation."""

    path: str  # relative to the clip folder, e.g. "train/3_007.mp4"
    label: int
    split: str
    voice: str
    sheet_row: int
    sheet_col: int
    seed: int


def split_counts(per_class: int, spec: DemoSpec) -> dict[str, int]:
    """Clips per class in each split; every split gets at least one when per_class >= 3."""
    test = max(1, round(per_class * spec.test_fraction)) if per_class >= 2 else 0
    val = max(1, round(per_class * spec.val_fraction)) if per_class >= 3 else 0
    return {"train": per_class - val - test, "val": val, "test": test}


def plan_clips(spec: DemoSpec) -> list[ClipPlan]:
    """The full, seeded list of clips of a spec (cheap: no audio or video is made)."""
    if set(spec.test_voices) - set(ALL_VOICES):
        raise ValueError(f"unknown test voices {spec.test_voices}; known: {ALL_VOICES}")
    ranges = [spec.writer_cols[s] for s in SPLIT_NAMES]
    cols = [set(range(a, b)) for a, b in ranges]
    if any(not c for c in cols) or any(cols[i] & cols[j] for i in range(3) for j in range(i)):
        raise ValueError(f"writer_cols must be non-empty and disjoint, got {spec.writer_cols}")
    counts = split_counts(spec.per_class, spec)
    plans: list[ClipPlan] = []
    for c in spec.classes:
        for s_id, split in enumerate(SPLIT_NAMES):
            rng = np.random.default_rng([spec.seed, c, s_id])
            n = counts[split]
            voices = list(spec.voices(split))
            order = np.concatenate(
                [rng.permutation(len(voices)) for _ in range(-(-n // len(voices)))]
            )
            a, b = spec.writer_cols[split]
            cells = [(r, col) for r in range(SHEET_ROWS_PER_CLASS) for col in range(a, b)]
            picks = rng.choice(len(cells), size=n, replace=n > len(cells))
            seeds = rng.integers(0, 2**31 - 1, size=n)
            for k in range(n):
                row, col = cells[picks[k]]
                plans.append(
                    ClipPlan(
                        path=f"{split}/{c}_{k:03d}.mp4",
                        label=c,
                        split=split,
                        voice=voices[order[k]],
                        sheet_row=c * SHEET_ROWS_PER_CLASS + row,
                        sheet_col=col,
                        seed=int(seeds[k]),
                    )
                )
    return plans


# --------------------------------------------------------------------------- rendering


def _load_sheet(sources: Path) -> np.ndarray:
    import cv2

    sheet = cv2.imread(str(sources / "digits.png"), cv2.IMREAD_GRAYSCALE)
    if sheet is None or sheet.shape != (50 * GLYPH, SHEET_COLS * GLYPH):
        raise DataError(f"{sources / 'digits.png'}: missing or not the 1000x2000 digit sheet")
    return sheet


def _load_voice(sources: Path, voice: str, digit: int) -> tuple[np.ndarray, int]:
    import soundfile as sf

    path = sources / "voices" / voice / f"{digit}.wav"
    if not path.exists():
        raise DataError(f"{path}: missing demo source recording")
    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return y.mean(axis=1), int(sr)


def render_video(glyph: np.ndarray, spec: DemoSpec, rng: np.random.Generator) -> np.ndarray:
    """Frames [T, H, W, 3] uint8 (RGB) of one digit moving slightly over a textured background."""
    import cv2

    size, n = spec.size, round(spec.seconds * spec.fps)
    # background: a random low-saturation colour, a gradient and a blurred static texture
    base = rng.uniform(0, 255, 3)
    base = base.mean() + (base - base.mean()) * rng.uniform(0.1, 0.5)
    ramp = np.linspace(-1, 1, size)[:, None, None] * rng.uniform(-30, 30, 3)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 3)
    texture *= rng.uniform(5, 25) / (texture.std() + 1e-6)
    bg = np.clip(base + ramp + texture[..., None], 0, 255).astype(np.float32)
    lum = bg.mean()
    ink = rng.uniform(0, 70, 3) if lum > 128 else rng.uniform(185, 255, 3)
    # the glyph, enlarged once; its alpha is the digit's grey level
    big = 4 * GLYPH
    alpha = cv2.resize(glyph, (big, big), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
    alpha = np.clip(alpha, 0, 1)
    scale0 = rng.uniform(0.65, 0.85) * size / big
    scale1 = scale0 * rng.uniform(0.85, 1.15)
    rot0 = rng.uniform(-15, 15)
    rot1 = rot0 + rng.uniform(-12, 12)
    c0 = size / 2 + rng.uniform(-10, 10, 2)
    c1 = c0 + rng.uniform(-14, 14, 2)
    frames = np.empty((n, size, size, 3), np.uint8)
    for t in range(n):
        u = t / max(n - 1, 1)
        u = u * u * (3 - 2 * u)  # ease in and out
        m = cv2.getRotationMatrix2D(
            (big / 2, big / 2), rot0 + u * (rot1 - rot0), scale0 + u * (scale1 - scale0)
        )
        m[:, 2] += (c0 + u * (c1 - c0)) - big / 2
        a = cv2.warpAffine(alpha, m, (size, size), flags=cv2.INTER_LINEAR)[..., None]
        frame = bg * (1 - a) + ink * a + rng.normal(0, 3, (size, size, 1))
        frames[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames


def render_audio(
    speech: np.ndarray, sr: int, spec: DemoSpec, rng: np.random.Generator
) -> np.ndarray:
    """Mono float32 [seconds * rate]: the word with random speed, tempo, gain, offset, noise."""
    from scipy.signal import lfilter, resample_poly

    speech = _trim(speech, sr)
    # speed (pitch and tempo together), then tempo alone (phase vocoder)
    speed = Fraction(round(rng.uniform(0.9, 1.1) * 200), 200)
    y = resample_poly(speech, spec.sample_rate, int(sr * speed)).astype(np.float32)
    y = time_stretch(y, rate=float(rng.uniform(0.85, 1.15)))
    n = round(spec.seconds * spec.sample_rate)
    head, tail = round(0.1 * spec.sample_rate), round(spec.tail_seconds * spec.sample_rate)
    y = y[: n - head - tail]
    y *= 10 ** (rng.uniform(-28, -20) / 20) / (np.sqrt(np.mean(y**2)) + 1e-9)
    start = int(rng.uniform(head, max(head, n - tail - len(y))))
    out = np.zeros(n, np.float32)
    out[start : start + len(y)] = y
    # background noise: white noise through a one-pole filter (from white to brown-ish)
    pole = rng.uniform(0.0, 0.97)
    noise = lfilter([1.0], [1.0, -pole], rng.normal(0, 1, n)).astype(np.float32)
    snr_db = rng.uniform(10, 30)
    rms_speech = np.sqrt(np.mean(y**2)) + 1e-9
    noise *= rms_speech / 10 ** (snr_db / 20) / (np.sqrt(np.mean(noise**2)) + 1e-9)
    return np.clip(out + noise, -1, 1).astype(np.float32)


def time_stretch(y: np.ndarray, rate: float, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Change the tempo by ``rate`` (> 1 faster), keeping the pitch: a plain phase vocoder."""
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    y = np.pad(y, (n_fft // 2, n_fft // 2 + n_fft))
    n_frames = 1 + (len(y) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    spec = np.fft.rfft(window * y[idx], axis=1)  # [frames, bins]
    steps = np.arange(0, n_frames - 1, rate)
    advance = np.linspace(0, np.pi * hop, spec.shape[1])
    phase = np.angle(spec[0])
    out = np.empty((len(steps), spec.shape[1]), np.complex128)
    for k, step in enumerate(steps):
        i, frac = int(step), step - int(step)
        a, b = spec[i], spec[i + 1]
        out[k] = ((1 - frac) * np.abs(a) + frac * np.abs(b)) * np.exp(1j * phase)
        delta = np.angle(b) - np.angle(a) - advance
        phase = phase + advance + delta - 2 * np.pi * np.round(delta / (2 * np.pi))
    frames = np.fft.irfft(out, n=n_fft, axis=1) * window
    length = n_fft + hop * (len(steps) - 1)
    signal = np.zeros(length)
    norm = np.zeros(length)
    for k in range(len(steps)):
        signal[k * hop : k * hop + n_fft] += frames[k]
        norm[k * hop : k * hop + n_fft] += window**2
    signal /= np.maximum(norm, 1e-3)
    return signal[n_fft // 2 : -(n_fft // 2) or None].astype(np.float32)


def _trim(y: np.ndarray, sr: int, top_db: float = 35.0) -> np.ndarray:
    """Cut leading and trailing silence: 10 ms frames quieter than the loudest by ``top_db``."""
    hop = max(1, sr // 100)
    n = len(y) // hop
    if n == 0:
        return y
    energy = (y[: n * hop].reshape(n, hop) ** 2).mean(axis=1)
    db = 10 * np.log10(energy + 1e-12)
    loud = np.flatnonzero(db > db.max() - top_db)
    return y[loud[0] * hop : (loud[-1] + 1) * hop]


def video_codec() -> str:
    """h264 through libx264 when PyAV has it, else MPEG-4 part 2."""
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_mp4(
    path: Path,
    frames: np.ndarray,
    audio: np.ndarray,
    fps: int,
    sample_rate: int,
    metadata: dict[str, str] | None = None,
) -> None:
    """Mux RGB frames and mono float audio into an .mp4 (h264 or mpeg4 + aac), reproducibly."""
    import av

    codec = video_codec()
    with av.open(str(path), "w", format="mp4") as out:
        out.metadata.update(metadata or {})
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height = frames.shape[2], frames.shape[1]
        vs.pix_fmt = "yuv420p"
        vs.thread_count = 1  # one thread: no race between encoder threads
        if codec == "libx264":
            # mbtree off: x264's macroblock-tree rate control reads uninitialised stack memory
            # (valgrind shows it; x264 core 165, 112x112 frames), so with it on the same frames
            # encoded twice in one process came out different (docs/demo.md, Reproducibility)
            vs.options = {"crf": "23", "preset": "medium", "mbtree": "0"}
        else:
            vs.bit_rate = 400_000
        aus = out.add_stream("aac", rate=sample_rate)
        aus.layout = "mono"
        aus.bit_rate = 48_000
        aus.thread_count = 1
        for t, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = t
            out.mux(vs.encode(frame))
        out.mux(vs.encode())
        chunk = 1024
        for i in range(0, len(audio), chunk):
            piece = audio[i : i + chunk]
            af = av.AudioFrame.from_ndarray(piece[None, :], format="fltp", layout="mono")
            af.sample_rate = sample_rate
            af.pts = i
            out.mux(aus.encode(af))
        out.mux(aus.encode())


def render_clip(
    plan: ClipPlan, spec: DemoSpec, sheet: np.ndarray, sources: Path, out: Path
) -> None:
    rng = np.random.default_rng(plan.seed)
    r, c = plan.sheet_row * GLYPH, plan.sheet_col * GLYPH
    frames = render_video(sheet[r : r + GLYPH, c : c + GLYPH], spec, rng)
    speech, sr = _load_voice(sources, plan.voice, plan.label)
    audio = render_audio(speech, sr, spec, rng)
    credit = (
        f"avexplorer demo clip: digit {plan.label}. Image: OpenCV digits.png (Apache-2.0). "
        f"Voice {plan.voice}: {VOICE_CREDITS[plan.voice]}. Modified (see ATTRIBUTION.md)."
    )
    meta = {"title": f"{plan.label} ({plan.voice})", "comment": credit}
    write_mp4(out, frames, audio, spec.fps, spec.sample_rate, meta)


# --------------------------------------------------------------------------- building


def build_demo_clips(
    out_dir: str | Path,
    seed: int = 0,
    per_class: int = 60,
    classes: Sequence[int] | None = None,
    only: Sequence[str] | None = None,
    sources: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    spec: DemoSpec | None = None,
) -> Path:
    """Build the demo clips into ``out_dir``; return the path of its ``manifest.csv``.

    ``manifest.csv`` has ``path,label,split`` (path relative to ``out_dir``, label a class name);
    ``clips.csv`` adds each clip's voice and sheet cell. ``only`` limits the rendering to those
    relative paths (the manifests still list every clip); ``progress(done, total)`` is called after
    each clip and may raise to cancel. Pure: no Qt, no global state, safe in a worker thread.
    """
    spec = spec or DemoSpec(
        seed=seed,
        per_class=per_class,
        classes=tuple(classes) if classes is not None else tuple(range(10)),
    )
    sources = Path(sources) if sources is not None else SOURCES_DIR
    out_dir = Path(out_dir)
    plans = plan_clips(spec)
    todo = plans if only is None else [p for p in plans if p.path in set(only)]
    if only is not None and len(todo) != len(set(only)):
        missing = set(only) - {p.path for p in todo}
        raise ValueError(f"not clips of this demo spec: {sorted(missing)[:5]}")
    sheet = _load_sheet(sources)
    for split in SPLIT_NAMES:
        (out_dir / split).mkdir(parents=True, exist_ok=True)
    for i, plan in enumerate(todo):
        target = out_dir / plan.path
        tmp = target.with_name(target.stem + ".part.mp4")
        render_clip(plan, spec, sheet, sources, tmp)
        tmp.replace(target)
        if progress is not None:
            progress(i + 1, len(todo))
    with open(out_dir / "clips.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "split", "voice", "sheet_row", "sheet_col", "seed"])
        for p in plans:
            w.writerow(
                [p.path, CLASS_NAMES[p.label], p.split, p.voice, p.sheet_row, p.sheet_col, p.seed]
            )
    manifest = out_dir / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "split"])
        for p in plans:
            w.writerow([p.path, CLASS_NAMES[p.label], p.split])
    (out_dir / "spec.json").write_text(
        json.dumps({"version": BUILD_VERSION, **asdict(spec)}, indent=1)
    )
    return manifest


def default_clips_dir(spec: DemoSpec | None = None) -> Path:
    """Where the demo clips live: ``$AVEXPLORER_DEMO_CLIPS`` or the user's cache folder."""
    if os.environ.get(CLIPS_ENV):
        return Path(os.environ[CLIPS_ENV])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "avexplorer" / f"demo-clips-{(spec or DemoSpec()).key()}"


def demo_clips_dir(
    build: bool = True,
    root: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    spec: DemoSpec | None = None,
) -> Path:
    """The folder of the demo clips (default: the full demo), built there on first use.

    With ``build`` false it only names the folder. The build goes to a temporary sibling folder
    that is renamed into place when complete, so a half-built folder is never seen, and a
    cancelled build (``progress`` raising) leaves nothing behind.
    """
    spec = spec or DemoSpec()
    root = Path(root) if root is not None else default_clips_dir(spec)
    if not build or _is_complete(root, spec):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=root.name + ".building-", dir=root.parent))
    try:
        build_demo_clips(tmp, spec=spec, progress=progress)
        (tmp / "COMPLETE").write_text(spec.key())
        if root.exists() and not _is_complete(root, spec):
            shutil.rmtree(root)
        try:
            tmp.rename(root)
        except OSError:  # another process finished first
            if not _is_complete(root, spec):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _is_complete(root: Path, spec: DemoSpec) -> bool:
    marker = root / "COMPLETE"
    return marker.exists() and marker.read_text().strip() == spec.key()


# --------------------------------------------------------------------------- loading


def clip_digest(path: str | Path) -> str:
    """sha256 of a clip file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_clip_digests(clips_dir: str | Path, out: str | Path | None = None) -> Path:
    """Record the sha256 of every clip in ``clips_dir`` (``sha256sum -c`` format), default
    ``resources/demo/clips.sha256``: the clips the shipped features were extracted from."""
    clips_dir = Path(clips_dir)
    out = Path(out) if out is not None else DEMO_DIR / "clips.sha256"
    rows = [p.path for p in plan_clips(DemoSpec())]
    out.write_text("".join(f"{clip_digest(clips_dir / r)}  {r}\n" for r in rows))
    return out


def shipped_clip_digests() -> dict[str, str]:
    """{relative clip path: sha256} of the clips the shipped features were made from."""
    path = DEMO_DIR / "clips.sha256"
    if not path.exists():
        return {}
    pairs = (line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())
    return {rel: digest for digest, rel in pairs}


def demo_features_path() -> Path:
    """The shipped features of the demo clips (lineage HDF5 layout, paths relative to clips)."""
    return DEMO_DIR / "features.h5"


def load_demo(clips_dir: str | Path | None = None, build: bool = False) -> AVDataset:
    """The demo dataset from the shipped features, with clip paths made absolute.

    Fast (no clip is touched unless ``build``): the paths point into ``clips_dir`` (default
    :func:`demo_clips_dir`), whose clips may still need building, e.g. by calling
    ``demo_clips_dir(build=True)`` in a worker.
    """
    path = demo_features_path()
    if not path.exists():
        raise DataError(
            f"{path}: the demo features are missing; "
            "build them with `python resources/build_demo.py`"
        )
    data = load_h5(path)
    root = demo_clips_dir(build=build, root=clips_dir)
    splits = {s: _absolute(data.split(s), root) for s in SPLIT_NAMES}
    return replace(data, **splits, attrs={**data.attrs, "clips_dir": str(root)})


def _absolute(split: Split, root: Path) -> Split:
    if split.paths is None:
        return split
    return replace(split, paths=tuple(str(root / p) for p in split.paths))


# --------------------------------------------------------------------------- thumbnails

THUMBNAILS_PATH = DEMO_DIR / "thumbnails.jpg"  # shipped: the first screen needs no clip built
THUMBNAIL_SIZE = 48  # the app's table thumbnails
THUMBNAILS_PER_ROW = 25


def first_frames(spec: DemoSpec | None = None, sources: str | Path | None = None) -> np.ndarray:
    """[clips, THUMBNAIL_SIZE, THUMBNAIL_SIZE, 3] uint8 RGB: each clip's first picture, in
    ``plan_clips`` order, rendered without building the clip (a clip's generator draws its
    background and first frame before anything else, so one rendered frame is that frame)."""
    import cv2

    spec = spec or DemoSpec()
    sheet = _load_sheet(Path(sources) if sources is not None else SOURCES_DIR)
    one_frame = replace(spec, seconds=1 / spec.fps)
    out = []
    for plan in plan_clips(spec):
        r, c = plan.sheet_row * GLYPH, plan.sheet_col * GLYPH
        glyph = sheet[r : r + GLYPH, c : c + GLYPH]
        frame = render_video(glyph, one_frame, np.random.default_rng(plan.seed))[0]
        size = (THUMBNAIL_SIZE, THUMBNAIL_SIZE)
        out.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    return np.stack(out)


def write_thumbnails(path: str | Path = THUMBNAILS_PATH, spec: DemoSpec | None = None) -> Path:
    """Save ``first_frames`` as one JPEG grid (``THUMBNAILS_PER_ROW`` to a row, plan order)."""
    import cv2

    frames = first_frames(spec)
    rows = -(-len(frames) // THUMBNAILS_PER_ROW)
    s = THUMBNAIL_SIZE
    grid = np.zeros((rows * s, THUMBNAILS_PER_ROW * s, 3), np.uint8)
    for i, frame in enumerate(frames):
        r, c = divmod(i, THUMBNAILS_PER_ROW)
        grid[r * s : (r + 1) * s, c * s : (c + 1) * s] = frame
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return Path(path)


def demo_thumbnails(clips_dir: str | Path) -> dict[str, np.ndarray]:
    """{clip path under ``clips_dir``: [48, 48, 3] uint8 RGB} from the shipped grid, for the
    default demo; empty when the grid is missing or does not fit the demo's clips."""
    import cv2

    plans = plan_clips(DemoSpec())
    grid = cv2.imread(str(THUMBNAILS_PATH), cv2.IMREAD_COLOR)
    s = THUMBNAIL_SIZE
    rows = -(-len(plans) // THUMBNAILS_PER_ROW)
    if grid is None or grid.shape[:2] != (rows * s, THUMBNAILS_PER_ROW * s):
        return {}
    grid = cv2.cvtColor(grid, cv2.COLOR_BGR2RGB)
    root = Path(clips_dir)
    out = {}
    for i, plan in enumerate(plans):
        r, c = divmod(i, THUMBNAILS_PER_ROW)
        out[str(root / plan.path)] = grid[r * s : (r + 1) * s, c * s : (c + 1) * s].copy()
    return out


def build_one_clip(path: str | Path, spec: DemoSpec | None = None) -> Path:
    """Build the demo clip at ``path`` (``<clips folder>/<split>/<name>.mp4``) alone, in place,
    unless it exists: what playing a clip needs before the whole folder is built.

    Written to a temporary name and renamed, so a reader never sees half a clip. ValueError when
    ``path`` is not a clip of the demo.
    """
    path = Path(path)
    if path.exists():
        return path
    spec = spec or DemoSpec()
    relative = f"{path.parent.name}/{path.name}"
    plan = next((p for p in plan_clips(spec) if p.path == relative), None)
    if plan is None:
        raise ValueError(f"{path}: not a clip of the demo")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.part.mp4")
    try:
        render_clip(plan, spec, _load_sheet(SOURCES_DIR), SOURCES_DIR, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
