"""Extraction: clips/s through ``core.features.extract.iter_features`` for 1-, 2- and 10-s clips,
against the code as it was before the latest speed work (``BEFORE``, checked out from git) in the
same run.

Clips: h264 480 x 360 at 25 fps with 44.1 kHz AAC sound (tests/core/features_fixtures.make_video);
short sound is zero-padded (``pad_short``), so 1-s clips are encoded in both modalities.
Each (code, clip length, workers) runs in a fresh process: start-up (imports, loading the
encoders, a first batch of two clips) is timed apart from the steady rate; the one-time export of
EfficientNet to ONNX (core/features/onnx_cpu.py) is done before any of them. Rates are wall clock;
the machine is shared, so the process's CPU time per clip is given too (all its threads: with
one decoding thread it covers decoding and encoding; with decoding processes it leaves their
share out), and that is the figure to compare under load. Peak MB is the extracting process's
peak resident memory (models included). The new features are compared with the old ones
(largest difference relative to the vector's size).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from benchmarks.common import fmt_ratio, fmt_s, fresh_python, row

SECTION = "Extraction"
ROOT = Path(__file__).resolve().parent.parent
# main before the second round of speed work: encoders in batches of 8 frames / 8 blocks with
# freed activations handed back to the system, audio and pictures encoded one after the other
BEFORE = "f0c27d0b6cc9b1a8e48b1c407b17bfcd87c3008a"
ENCODERS = ("aisfx", "efficientnet-lite0")

_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from pathlib import Path
import numpy as np
from core.features.encoders import set_threads
from core.features.extract import iter_features, load_encoders
set_threads({threads})
paths = sorted(Path({folder!r}).glob("*.mp4"))
encoders = load_encoders({audio!r}, {visual!r}, device="cpu")
list(iter_features(paths[:2], encoders, workers=1, pad_short=True{isolate}))
start = time.perf_counter() - t0
t, c = time.perf_counter(), time.process_time()
results = list(iter_features(paths, encoders, workers={workers}, pad_short=True{isolate}))
wall, cpu = time.perf_counter() - t, time.process_time() - c
assert all(r.features is not None for r in results), [r.error for r in results]
np.savez({out!r}, audio=np.stack([r.features.audio for r in results]),
         visual=np.stack([r.features.visual for r in results]))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps([start, wall, cpu, len(paths), peak]))
"""

_EXPORT = """
import json
from core.features.encoders import load_encoders
load_encoders({audio!r}, {visual!r}, device="cpu")
print(json.dumps(None))
"""


def _clips(root: Path, seconds: float, n: int) -> Path:
    import numpy as np

    from tests.core.features_fixtures import make_video

    folder = root / f"{seconds:g}s"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        make_video(
            folder / f"clip{i:02d}.mp4",
            seconds,
            fps=25,
            size=480,
            height=360,
            color=tuple(int(c) for c in rng.integers(0, 256, 3)),  # type: ignore[arg-type]
            tone=220.0 * (1 + i % 4),
            sr=44_100,
            codec="libx264",
        )
    return folder


def _before_tree(root: Path) -> Path | None:
    """The ``core`` package as it was at ``BEFORE``, or None without git."""
    tree = root / "before"
    tree.mkdir()
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", BEFORE, "core"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return tree


def _run(
    code_root: Path,
    folder: Path,
    workers: int,
    out: Path,
    encoders: tuple[str, str] = ENCODERS,
    threads: int = 0,
    isolate: bool = True,
) -> list[float]:
    """[start-up s, wall s, CPU s, clips, peak MB] of one extraction in a fresh process."""
    env = dict(os.environ, PYTHONPATH=f"{code_root}{os.pathsep}{ROOT}")
    code = _CHILD.format(
        folder=str(folder),
        audio=encoders[0],
        visual=encoders[1],
        workers=workers,
        out=str(out),
        threads=threads,
        isolate="" if isolate else ", isolate=False",  # BEFORE's code has no such argument
    )
    return fresh_python(code, cwd=code_root, env=env)


def _difference(a: Path, b: Path) -> float:
    import numpy as np

    with np.load(a) as x, np.load(b) as y:
        return max(
            float((abs(x[k] - y[k]).max(axis=1) / abs(y[k]).max(axis=1)).max())
            for k in ("audio", "visual")
        )


def run(quick: bool) -> list[dict]:
    if quick:  # a smoke run: the weights-free encoders, new code only
        with tempfile.TemporaryDirectory() as tmp:
            folder = _clips(Path(tmp), 2.0, 4)
            start, wall, _cpu, count, _peak = _run(
                ROOT, folder, 1, Path(tmp) / "out.npz", ("logmel-stats", "color-grid")
            )
        case = f"logmel-stats + color-grid, {count} clips of 2 s, a decoding process"
        return [row(SECTION, case, f"{count / wall:.3g} clips/s (start-up {fmt_s(start)})")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        before = _before_tree(root)
        # the one-time export of EfficientNet to ONNX (kept in the user's cache) is not start-up
        fresh_python(_EXPORT.format(audio=ENCODERS[0], visual=ENCODERS[1]), cwd=ROOT)
        for seconds, n in ((1.0, 48), (2.0, 48), (10.0, 16)):
            folder = _clips(root, seconds, n)
            for workers in (1, 2):
                new_out, old_out = root / "new.npz", root / "old.npz"
                start, wall, cpu, count, peak = _run(ROOT, folder, workers, new_out)
                rate = count / wall
                alternative = ratio = notes = ""
                if before is not None:
                    o_start, o_wall, o_cpu, _, o_peak = _run(before, folder, workers, old_out)
                    alternative = (
                        f"before: {count / o_wall:.3g} clips/s (CPU {fmt_s(o_cpu / count)}/clip; "
                        f"start-up {fmt_s(o_start)}; peak {o_peak:.0f} MB)"
                    )
                    ratio = f"{fmt_ratio(o_wall, wall)} faster, {fmt_ratio(o_cpu, cpu)} less CPU"
                    diff = _difference(new_out, old_out)
                    notes = f"features vs before: largest relative difference {diff:.1e}"
                decoding = "a decoding process" if workers == 1 else f"{workers} decoding processes"
                rows.append(
                    row(
                        SECTION,
                        f"{' + '.join(ENCODERS)}, {count} clips of {seconds:g} s, {decoding}",
                        f"{rate:.3g} clips/s (CPU {fmt_s(cpu / count)}/clip; "
                        f"start-up {fmt_s(start)})",
                        alternative,
                        ratio,
                        peak_mb=peak,
                        target=">= 5 clips/s on 2 cores" if seconds == 2.0 else "",
                        met=rate >= 5 if seconds == 2.0 else None,
                        notes=notes,
                    )
                )
                if workers == 1:
                    rows.append(_in_process(folder, root, seconds, count, wall, cpu))
                if workers == 1 and seconds > 1:
                    rows.append(_more_threads(folder, root, seconds, count, wall, cpu))
    return rows


def _in_process(
    folder: Path, root: Path, seconds: float, count: int, wall: float, cpu: float
) -> dict:
    """What isolating the decoder costs: decoding in a thread of the extracting process
    (``isolate=False``, where a decoder crash ends the run) against the decoding process."""
    start, t_wall, t_cpu, _, peak = _run(ROOT, folder, 1, root / "thread.npz", isolate=False)
    return row(
        SECTION,
        f"{' + '.join(ENCODERS)}, {count} clips of {seconds:g} s, decoding in a thread of the "
        "extracting process (isolate=False)",
        f"{count / t_wall:.3g} clips/s (CPU {fmt_s(t_cpu / count)}/clip; start-up {fmt_s(start)})",
        f"a decoding process (the default): {count / wall:.3g} clips/s "
        f"(CPU {fmt_s(cpu / count)}/clip, its decoding not counted)",
        f"{fmt_ratio(wall, t_wall)} faster",
        peak_mb=peak,
    )


def _more_threads(
    folder: Path, root: Path, seconds: float, count: int, wall: float, cpu: float
) -> dict:
    """The default (half the CPUs per encoder) against every CPU for each encoder, torch's own
    default and the app's: the two encoders then share the cores between them."""
    threads = os.cpu_count() or 1
    start, t_wall, t_cpu, _, peak = _run(ROOT, folder, 1, root / "threads.npz", threads=threads)
    return row(
        SECTION,
        f"{' + '.join(ENCODERS)}, {count} clips of {seconds:g} s, a decoding process, "
        f"{threads} torch threads per encoder",
        f"{count / t_wall:.3g} clips/s (CPU {fmt_s(t_cpu / count)}/clip; start-up {fmt_s(start)})",
        f"the default, {max(1, threads // 2)} per encoder: {count / wall:.3g} clips/s "
        f"(CPU {fmt_s(cpu / count)}/clip)",
        f"{fmt_ratio(wall, t_wall)} faster, {fmt_ratio(cpu, t_cpu)} less CPU",
        peak_mb=peak,
    )
