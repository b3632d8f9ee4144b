"""Extraction: clips/s through ``core.features.extract.iter_features`` per encoder pair, with 1 and
2 decoding workers, on generated clips (tests/core/features_fixtures.make_clip_folder: 2-5 s,
320 x 240, 25 fps). docs/features.md holds the features engineer's larger table (40 clips)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import fmt_ratio, peak_memory, row

SECTION = "Extraction"


def _rate(paths: list[Path], audio: str, visual: str, workers: int) -> tuple[float, float]:
    from core.features.extract import iter_features, load_encoders

    encoders = load_encoders(audio, visual, device="cpu")  # loading is excluded from the rate
    with peak_memory() as peak:
        t = time.perf_counter()
        results = list(iter_features(paths, encoders, workers=workers))
        seconds = time.perf_counter() - t
    bad = [r.path for r in results if r.features is None]
    assert not bad, f"unusable generated clips: {bad}"
    return len(paths) / seconds, peak.mb


def run(quick: bool) -> list[dict]:
    from tests.core.features_fixtures import make_clip_folder

    combos = [("logmel-stats", "color-grid", 12)]
    if not quick:
        combos += [("aisfx", "efficientnet-lite0", 4)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = make_clip_folder(Path(tmp) / "clips", n=4 if quick else 12, size=320)
        all_paths = sorted(root.rglob("*.mp4"))
        for audio, visual, n in combos:
            paths = all_paths[:n]
            rates = {w: _rate(paths, audio, visual, w) for w in ((1,) if quick else (1, 2))}
            one = rates[1][0]
            two = rates.get(2, (float("nan"), float("nan")))
            rows.append(
                row(
                    SECTION,
                    f"{audio} + {visual}, {len(paths)} clips, 1 worker",
                    f"{one:.3g} clips/s",
                    "" if quick else f"2 workers: {two[0]:.3g} clips/s",
                    "" if quick else f"2 workers {fmt_ratio(two[0], one)}",
                    rates[1][1],
                    notes="decode + encode, model loading excluded; peak = process RSS",
                )
            )
    return rows
