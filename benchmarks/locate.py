"""Does ``avexplorer locate`` find a spoken digit where it is shown? Composite demo clips
(core/data/composites.py: three digits in sequence, 3 s each) with their timing recorded, a model
trained on the shipped demo features, and every composite's three spoken-digit queries.

    python -m benchmarks.locate                  # writes docs/results/locate.json
    python -m benchmarks.locate --count 6 --out /tmp/x.json   # a smaller run elsewhere

A query hits when the middle of its best segment lies in the stretch where its digit is shown;
with three equal stretches chance is 1/3. A composite is found when most of its queries hit.
``benchmarks.results`` renders the JSON into docs/results.md (``section``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results" / "locate.json"
EPOCHS = 40  # the demo's epochs in docs/results.md
SEED = 0
SEGMENT_SECONDS = 1.0


def train_demo_model(out_dir: Path, epochs: int = EPOCHS, seed: int = SEED) -> dict[str, Any]:
    """psd with the default config on the shipped demo features; returns what was trained."""
    import torch

    from core.data.demo import load_demo
    from core.training.config import RunConfig, method_config
    from core.training.events import RunFinished
    from core.training.loop import train

    torch.set_num_threads(1)
    base = RunConfig(device="cpu", threads=1, snapshot_every=0, seed=seed)
    config = method_config("psd", base.replace(**{"optim.epochs": epochs}))
    finished = None
    # A scratch run: a rerun with the same --work replaces the previous one.
    for ev in train(config, load_demo(), out_dir=out_dir, overwrite=True):
        if isinstance(ev, RunFinished):
            finished = ev
    assert finished is not None and finished.test is not None
    return {
        "checkpoint": str(out_dir / "model.pt"),
        "method": "psd",
        "epochs": epochs,
        "seed": seed,
        "best_epoch": finished.best_epoch,
        "test_map": finished.test.as_dict(),
    }


def measure(folder: Path, checkpoint: str | Path) -> dict[str, Any]:
    """Locate every query of the composites in ``folder`` in its own composite."""
    from core.data.composites import load_composites
    from core.data.dataset import positive_attr
    from core.exploration.locate import locate_in_clip
    from core.features.encoders import load_encoders
    from core.features.extract import encode_path
    from core.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build_model()
    enc = load_encoders(ckpt.attrs["audio_encoder"], ckpt.attrs["visual_encoder"], "cpu")
    fps = positive_attr(ckpt.attrs, "frame_rate", 1.0, str(ckpt.path))
    rows = []
    for comp in load_composites(folder):
        clip = encode_path(folder / comp.path, None, enc.visual, fps=fps, segments=SEGMENT_SECONDS)
        assert clip.visual_seg is not None
        for q, truth in zip(comp.queries, comp.stretches, strict=True):
            query = encode_path(folder / q.path, enc.audio, None).audio
            found = locate_in_clip(
                model, query, "audio", clip.visual_seg, SEGMENT_SECONDS, clip.duration
            )
            best = found.best
            middle = (best.start + best.end) / 2
            shown = next(s.digit for s in comp.stretches if s.holds(middle))
            rows.append(
                {
                    "clip": comp.path,
                    "query": q.path,
                    "digit": q.digit,
                    "truth": [truth.start, truth.end],
                    "best": [best.start, best.end],
                    "shown_at_best": shown,
                    "hit": bool(truth.holds(middle)),
                    "scores": [round(float(s), 4) for s in found.scores],
                }
            )
    return summarise(rows)


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_clip: dict[str, list[bool]] = {}
    for r in rows:
        by_clip.setdefault(r["clip"], []).append(r["hit"])
    found = [sum(h) > len(h) / 2 for h in by_clip.values()]
    return {
        "queries": len(rows),
        "hits": sum(r["hit"] for r in rows),
        "hit_rate": sum(r["hit"] for r in rows) / max(len(rows), 1),
        "composites": len(by_clip),
        "composites_found": sum(found),
        "composite_rate": sum(found) / max(len(found), 1),
        "rows": rows,
    }


def run(count: int, epochs: int, seed: int, splits: list[str], work: Path) -> dict[str, Any]:
    from core.data.composites import CompositeSpec, build_composites

    started = time.perf_counter()
    model = train_demo_model(work / "run", epochs, seed)
    out: dict[str, Any] = {
        "meta": {"python": platform.python_version(), "count": count, "seed": seed},
        "model": model,
        "designs": {},
    }
    for split in splits:
        spec = CompositeSpec(seed=seed, count=count, split=split)
        folder = work / f"composites-{split}"
        build_composites(folder, spec)
        result = measure(folder, model["checkpoint"])
        print(
            f"{split}: {result['hits']}/{result['queries']} queries hit "
            f"({100 * result['hit_rate']:.1f} %), {result['composites_found']}/"
            f"{result['composites']} composites found",
            file=sys.stderr,
        )
        out["designs"][split] = result
    out["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    del out["model"]["checkpoint"]  # a temporary path
    return out


DESIGNS = {
    "test": "the demo's test design: unseen writers (sheet columns 80-99) and the held-out "
    "voice it_IT_m_Carlo, for the stretches and the queries",
    "val": "unseen writers (sheet columns 64-79), training voices (fresh renderings)",
}


def standard_error(r: dict[str, Any]) -> float:
    """Binomial standard error of a hit rate (queries counted as independent)."""
    p, n = r["hit_rate"], max(r["queries"], 1)
    return (p * (1 - p) / n) ** 0.5


def section(path: Path = RESULTS) -> list[str]:
    """The docs/results.md section of the JSON at ``path`` (nothing when it does not exist)."""
    if not path.exists():
        return []
    db = json.loads(path.read_text())
    m = db["model"]
    test_map = m["test_map"]
    intro = (
        f"{db['meta']['count']} composite clips per design, each showing three distinct digits "
        "for 3 s apiece, each digit spoken once within its own stretch "
        "(core/data/composites.py, built from resources/demo/sources with the demo's renderer; "
        "timing recorded). For each shown digit a fresh recording of it (demo-clip length, AAC) "
        "is the query of "
        "`avexplorer locate MODEL CLIP --query DIGIT.m4a` (a2v, 1 s segments): it hits when the "
        "middle of the best segment lies in the stretch showing that digit (chance 1/3). "
        f"Model: {m['method']}, default config, {m['epochs']} epochs, seed {m['seed']}, trained on "
        f"the shipped demo features (best epoch {m['best_epoch']}; clip-level test MAP a2v "
        f"{100 * test_map['a2v']:.2f}, v2a {100 * test_map['v2a']:.2f}). A composite is found "
        "when at least two of its three queries hit; ± is the hit rate's binomial standard error."
    )
    lines = [
        "## Locating a spoken digit in time (composite demo clips)",
        "",
        *textwrap.wrap(intro, 100, break_on_hyphens=False),
        "",
        "| design | queries | hit rate | composites found |",
        "| --- | --- | --- | --- |",
    ]
    for split, r in db["designs"].items():
        lines.append(
            f"| {DESIGNS.get(split, split)} | {r['queries']} | "
            f"**{100 * r['hit_rate']:.1f} %** ± {100 * standard_error(r):.1f} ({r['hits']}) | "
            f"{r['composites_found']} of {r['composites']} ({100 * r['composite_rate']:.0f} %) |"
        )
    regenerate = (
        "Regenerate: `python -m benchmarks.locate` (writes docs/results/locate.json, about 4 "
        "minutes on 2 busy cores), then `python -m benchmarks.results --render`."
    )
    lines += ["", *textwrap.wrap(regenerate, 100, break_on_hyphens=False), ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.locate", description=__doc__)
    p.add_argument("--count", type=int, default=30, help="composites per design")
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--designs", default="test,val", help="comma-separated: test, val")
    p.add_argument("--work", type=Path, help="folder for the model and the clips (default temp)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="avx-locate-") as tmp:
        work = args.work or Path(tmp)
        result = run(args.count, args.epochs, args.seed, args.designs.split(","), work)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
