"""First launch: seconds from starting the app to the demo's 600 thumbnails in its table, with no
demo clip built yet (a fresh machine), against what the thumbnails waited for before: building
the demo clips (timed here on a sample of clips and scaled to all of them).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import fmt_ratio, fmt_s, fresh_python, row

SECTION = "GUI"
ROOT = Path(__file__).resolve().parent.parent

_APP = """
import os, sys, time
T0 = float(sys.argv[1])
from avexplorer.state.catalog import Catalog
shown = Catalog.set_thumbnails
def watch(self, images, durations):
    shown(self, images, durations)
    if len(self.thumbnails) >= 600:
        print(time.time() - T0, flush=True)
        os._exit(0)
Catalog.set_thumbnails = watch
from avexplorer.app import run_app
run_app([])
"""


def _first_screen(clips: Path) -> float:
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        AVEXPLORER_DEMO_CLIPS=str(clips),
        XDG_CONFIG_HOME=str(clips.parent / "config"),
    )
    return float(fresh_python(_APP, repr(time.time()), env=env, timeout=300))


def _clip_build_seconds(out: Path, sample: int = 20) -> float:
    """Seconds to build all demo clips, from building ``sample`` of them."""
    from core.data.demo import DemoSpec, build_demo_clips, plan_clips

    plans = plan_clips(DemoSpec())
    picks = [p.path for p in plans[:: len(plans) // sample][:sample]]
    t = time.perf_counter()
    build_demo_clips(out, only=picks)
    return (time.perf_counter() - t) * len(plans) / len(picks)


def run(quick: bool) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seconds = [_first_screen(root / f"clips{i}") for i in range(1 if quick else 2)]
        build = _clip_build_seconds(root / "built", 5 if quick else 20)
    best = min(seconds)
    return [
        row(
            SECTION,
            "first launch: app start to the demo's 600 thumbnails (shipped; no clip built)",
            fmt_s(best),
            f"before, the thumbnails waited for the clip build: {fmt_s(build)} (scaled from a "
            "sample) plus start-up",
            f"{fmt_ratio(build, best)}",
            target="< 5 s",
            met=best < 5,
            notes="runs: " + ", ".join(fmt_s(s) for s in seconds) + "; offscreen Qt",
        )
    ]
