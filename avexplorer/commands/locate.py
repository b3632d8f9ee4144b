"""``avexplorer locate RUN/model.pt CLIP --query QUERY [--query-modality M] [--json]``, and
``avexplorer locate RUN/model.pt DATA.h5 --query QUERY [--split test] [--k 10]`` (moments)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from core.device import resolve_device


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "locate",
        help="find when, in a clip, a sound or a picture appears",
        description="Embed QUERY (a sound, an image or a video) with its modality's encoder and "
        "the checkpoint's model, and compare it with every segment of the other modality of CLIP: "
        "a sound is looked for in the clip's pictures (a2v), a picture in its sound (v2a). "
        "Given a feature file with segments (extract --segments) instead of a clip: the best "
        "moment of each clip of a split, the top --k of them.",
    )
    p.add_argument("checkpoint", help="RUN_DIR/model.pt")
    p.add_argument("clip", metavar="CLIP", help="the video to search in, or a feature file")
    p.add_argument("--query", required=True, help="a sound, an image or a video")
    p.add_argument(
        "--query-modality",
        choices=("audio", "visual"),
        help="for a video query: search with its sound (default) or its pictures",
    )
    p.add_argument(
        "--segments",
        type=float,
        metavar="SECONDS",
        help="segment length (default: the checkpoint's features', else 1.0)",
    )
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--k", type=int, default=10, help="moments to list from a feature file")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--json",
        action="store_true",
        help='print one line {"direction": ..., "segments": [{"start", "end", "score"}, ...], '
        '"best": {...}}',
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from core.errors import UserError
    from core.exploration.locate import locate_file

    if args.segments is not None and not (args.segments > 0 and math.isfinite(args.segments)):
        raise UserError("--segments must be a positive number of seconds")
    if args.k < 1:
        raise UserError("--k must be at least 1")
    if Path(args.clip).suffix.lower() in (".h5", ".hdf5"):
        return _moments(args)
    found = locate_file(
        args.checkpoint,
        args.clip,
        args.query,
        args.query_modality,
        seconds=args.segments,
        device=resolve_device(args.device),
    )
    if args.json:
        print(json.dumps(found.as_dict()))
        return 0
    best = found.best
    what = "sound" if found.direction == "a2v" else "picture"
    print(f"{args.query}'s {what} in {args.clip} ({found.direction}), cosine per segment:")
    for m in found.segments:
        bar = "#" * max(0, round(20 * (m.score + 1) / 2))
        mark = "  <- best" if m is best else ""
        print(f"  {m.start:7.2f}-{m.end:7.2f} s  {m.score:+.3f}  {bar}{mark}")
    return 0


def _moments(args: argparse.Namespace) -> int:
    from core.exploration.locate import moments_in_file

    direction, moments, paths = moments_in_file(
        args.checkpoint,
        args.clip,
        args.query,
        args.query_modality,
        split=args.split,
        k=args.k,
        device=resolve_device(args.device),
    )
    rows = [{**m.as_dict(), "path": paths[m.clip] if paths is not None else None} for m in moments]
    if args.json:
        print(json.dumps({"direction": direction, "moments": rows}))
        return 0
    print(f"best moments for {args.query} in the {args.split} split of {args.clip} ({direction}):")
    for r in rows:
        name = Path(r["path"]).name if r["path"] else f"#{r['clip']}"
        print(f"  {r['score']:+.3f}  {name}  {r['start']:.2f}-{r['end']:.2f} s")
    return 0
