"""Composite demo clips whose timing is known: several digits in sequence, each shown and spoken
in its own stretch of time, and spoken-digit queries to look for them with.

Built from the demo's real sources (resources/demo/sources) with the demo's own renderer
(core/data/demo.py): each stretch is a demo clip of ``stretch_seconds`` (a digit from the sheet
drifting over its own background, the same digit spoken once inside the stretch), and the stretches
are joined into one .mp4. ``composites.json`` records what is where, which is the truth
``avexplorer locate`` is measured against (benchmarks/locate.py, tests/core/test_composites.py).

By default everything comes from the demo's test design: sheet columns no training clip uses
(unseen writers) and the held-out test voice; ``split="val"`` keeps unseen writers but uses the
training voices. Queries are fresh renderings of each shown digit (another speed, tempo, offset
and noise than the stretch's own speech), demo-clip length, AAC-coded like the demo clips.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.data.demo import (
    GLYPH,
    SHEET_ROWS_PER_CLASS,
    DemoSpec,
    _load_sheet,
    _load_voice,
    render_audio,
    render_video,
    write_mp4,
)

TIMING_NAME = "composites.json"


@dataclass(frozen=True)
class CompositeSpec:
    seed: int = 0
    count: int = 30  # composite clips
    digits: int = 3  # stretches per clip, distinct digits
    stretch_seconds: float = 3.0
    split: str = "test"  # whose sheet columns and voices the clips and queries use
    demo: DemoSpec = field(default_factory=DemoSpec)


@dataclass(frozen=True)
class Stretch:
    digit: int
    start: float  # seconds
    end: float
    voice: str
    sheet_row: int
    sheet_col: int

    def holds(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class Query:
    path: str  # relative to the composites folder
    digit: int
    voice: str


@dataclass(frozen=True)
class Composite:
    path: str  # relative to the composites folder
    seconds: float
    stretches: tuple[Stretch, ...]
    queries: tuple[Query, ...]  # one per stretch, in the same order
    seed: int

    def stretch_of(self, digit: int) -> Stretch:
        return next(s for s in self.stretches if s.digit == digit)


def plan_composites(spec: CompositeSpec) -> list[Composite]:
    """The seeded plan: which digits, cells and voices go where (cheap, nothing rendered)."""
    demo = spec.demo
    if spec.digits > len(demo.classes):
        raise ValueError(f"{spec.digits} distinct digits per clip, the demo has {demo.classes}")
    a, b = demo.writer_cols[spec.split]
    voices = demo.voices(spec.split)
    rng = np.random.default_rng([spec.seed, 14])
    plans = []
    for i in range(spec.count):
        digits = rng.choice(demo.classes, size=spec.digits, replace=False)
        stretches, queries = [], []
        for k, d in enumerate(digits):
            start = k * spec.stretch_seconds
            stretches.append(
                Stretch(
                    digit=int(d),
                    start=start,
                    end=start + spec.stretch_seconds,
                    voice=str(rng.choice(voices)),
                    sheet_row=int(d) * SHEET_ROWS_PER_CLASS
                    + int(rng.integers(SHEET_ROWS_PER_CLASS)),
                    sheet_col=int(rng.integers(a, b)),
                )
            )
            queries.append(Query(f"queries/{i:03d}_{k}_{d}.m4a", int(d), str(rng.choice(voices))))
        plans.append(
            Composite(
                path=f"clips/{i:03d}_{''.join(str(d) for d in digits)}.mp4",
                seconds=spec.digits * spec.stretch_seconds,
                stretches=tuple(stretches),
                queries=tuple(queries),
                seed=int(rng.integers(0, 2**31 - 1)),
            )
        )
    return plans


def build_composites(
    out_dir: str | Path, spec: CompositeSpec | None = None, sources: str | Path | None = None
) -> list[Composite]:
    """Render the composites and their queries into ``out_dir`` and write ``composites.json``."""
    from core.data.demo import SOURCES_DIR

    spec = spec or CompositeSpec()
    sources = Path(sources) if sources is not None else SOURCES_DIR
    out = Path(out_dir)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    (out / "queries").mkdir(parents=True, exist_ok=True)
    sheet = _load_sheet(sources)
    stretch = DemoSpec(**{**asdict(spec.demo), "seconds": spec.stretch_seconds})
    plans = plan_composites(spec)
    for plan in plans:
        rng = np.random.default_rng(plan.seed)
        frames, audio = [], []
        for s in plan.stretches:
            r, c = s.sheet_row * GLYPH, s.sheet_col * GLYPH
            frames.append(render_video(sheet[r : r + GLYPH, c : c + GLYPH], stretch, rng))
            speech, sr = _load_voice(sources, s.voice, s.digit)
            audio.append(render_audio(speech, sr, stretch, rng))
        meta = {"title": f"digits {' '.join(str(s.digit) for s in plan.stretches)}"}
        write_mp4(
            out / plan.path,
            np.concatenate(frames),
            np.concatenate(audio),
            stretch.fps,
            stretch.sample_rate,
            meta,
        )
        for q in plan.queries:
            speech, sr = _load_voice(sources, q.voice, q.digit)
            write_m4a(out / q.path, render_audio(speech, sr, spec.demo, rng), spec.demo.sample_rate)
    record = {"spec": asdict(spec), "composites": [asdict(p) for p in plans]}
    (out / TIMING_NAME).write_text(json.dumps(record, indent=1) + "\n")
    return plans


def load_composites(folder: str | Path) -> list[Composite]:
    """The plans recorded in ``folder/composites.json`` by :func:`build_composites`."""
    record = json.loads((Path(folder) / TIMING_NAME).read_text())
    return [
        Composite(
            path=c["path"],
            seconds=c["seconds"],
            stretches=tuple(Stretch(**s) for s in c["stretches"]),
            queries=tuple(Query(**q) for q in c["queries"]),
            seed=c["seed"],
        )
        for c in record["composites"]
    ]


def write_m4a(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Mono float audio as AAC in an .m4a, coded as the demo clips' sound is."""
    import av

    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=sample_rate)
        stream.layout = "mono"
        stream.bit_rate = 48_000
        stream.thread_count = 1
        for i in range(0, len(audio), 1024):
            frame = av.AudioFrame.from_ndarray(
                audio[None, i : i + 1024], format="fltp", layout="mono"
            )
            frame.sample_rate = sample_rate
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
