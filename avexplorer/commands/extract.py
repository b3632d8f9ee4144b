"""``avexplorer extract CLIPS_DIR --out FEATURES.h5`` (and ``--merge PART.h5 ... --out ALL.h5``)"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from tqdm import tqdm

from core.errors import UserError
from core.features.cache import FeatureCache, default_cache_dir
from core.features.encoders import (
    AUDIO_ENCODERS,
    DEFAULT_AUDIO,
    DEFAULT_VISUAL,
    VISUAL_ENCODERS,
    aisfx_missing_note,
    load_encoders,
    set_threads,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "extract",
        help="encode a folder of clips into a feature file",
        description="Decode every clip of CLIPS_DIR (one subfolder per class, or a manifest "
        "path,label[,split]), encode frames and sound with pretrained encoders and write the "
        "pairs in the lineage's HDF5 layout. Bad files are skipped and listed at the end; clips "
        "without usable audio are left out of the pairs file. Features are cached by file "
        "content, so re-running on a grown folder only encodes the new clips.",
    )
    p.add_argument(
        "clips", nargs="?", metavar="CLIPS_DIR", help="folder with one subfolder per class"
    )
    p.add_argument("--out", required=True, help="feature file to write (.h5)")
    p.add_argument("--manifest", help="CSV path,label[,split] (default: CLIPS_DIR/manifest.csv)")
    p.add_argument(
        "--allow-outside",
        action="store_true",
        help="let the manifest list clips outside its own folder tree",
    )
    p.add_argument("--val", type=float, default=0.1, help="validation fraction (default 0.1)")
    p.add_argument("--test", type=float, default=0.2, help="test fraction (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the stratified split")
    p.add_argument(
        "--audio-encoder",
        default=DEFAULT_AUDIO,
        choices=sorted(AUDIO_ENCODERS),
        help=f"default {DEFAULT_AUDIO} (falls back to logmel-stats if aisfx is missing)",
    )
    p.add_argument(
        "--visual-encoder",
        default=DEFAULT_VISUAL,
        choices=sorted(VISUAL_ENCODERS),
        help=f"default {DEFAULT_VISUAL}",
    )
    p.add_argument("--fps", type=float, default=1.0, help="video frames sampled per second")
    p.add_argument(
        "--segments",
        type=float,
        nargs="?",
        const=1.0,
        default=None,
        metavar="SECONDS",
        help="also store per-segment features (audio_seg_*, visual_seg_*, seg_count_*) for "
        "segments of SECONDS (default 1.0 when the flag is given)",
    )
    p.add_argument(
        "--pad-short",
        action="store_true",
        help="zero-pad audio shorter than half an encoder window instead of leaving the clip out",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="1 (default): one decoding process, fed ahead of the encoders; more: a pool of "
        "them (worth it only when decoding, not encoding, is the slow part, e.g. large videos)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=32,
        help="frames gathered before encoding (then cut into each encoder's own batches)",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, ...")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads of each encoder (torch, ONNX Runtime); pictures and sound encode at once "
        "(default 0: half the CPUs)",
    )
    cache = p.add_mutually_exclusive_group()
    cache.add_argument("--cache", help=f"feature cache folder (default {default_cache_dir()})")
    cache.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--shard", help="i/n: encode only every n-th clip from the i-th (0-based)")
    p.add_argument("--merge", nargs="+", metavar="PART", help="merge the --shard files instead")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an --out that holds another file than an earlier extraction of these "
        "clips (never an input: the manifest, a clip, a --merge part)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from core.features.dataset import (
        SplitRule,
        check_listing_out,
        extract_dataset,
        list_clips,
        merge_shards,
        parse_shard,
    )

    if args.merge:
        if args.clips or args.shard:
            raise UserError("--merge takes only the shard files and --out")
        report = merge_shards(args.merge, args.out, force=args.force)
        print(f"merged {len(args.merge)} shards into {args.out}")
        print(report.summary(), file=sys.stderr if report.skipped else sys.stdout)
        return 0
    if args.clips is None and args.manifest is None:
        raise UserError("give CLIPS_DIR (or --manifest FILE, or --merge PART.h5 ...)")
    if args.workers < 1:
        raise UserError("--workers must be at least 1")
    if not (args.fps > 0 and math.isfinite(args.fps)):  # nan passed "<= 0": one frame a clip
        raise UserError("--fps must be a positive number")
    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    if not 0 <= args.threads <= (os.cpu_count() or 1):
        raise UserError(f"--threads must be between 0 (automatic) and {os.cpu_count() or 1}")
    if args.segments is not None and not (args.segments > 0 and math.isfinite(args.segments)):
        raise UserError("--segments must be a positive number of seconds")
    shard = parse_shard(args.shard) if args.shard else None
    rule = SplitRule(args.val, args.test, args.seed)
    listing = list_clips(args.clips, args.manifest, allow_outside=args.allow_outside)
    check_listing_out(args.out, listing, force=args.force)  # before the encoders load
    set_threads(args.threads)
    encoders = load_encoders(args.audio_encoder, args.visual_encoder, args.device)
    cache = None if args.no_cache else FeatureCache(args.cache)
    first, step = shard or (0, 1)
    total = len(range(first, len(listing.items), step))
    with tqdm(total=total, unit="clip", disable=args.quiet, file=sys.stderr) as bar:
        report = extract_dataset(
            listing,
            Path(args.out),
            encoders,
            rule=rule,
            fps=args.fps,
            cache=cache,
            workers=args.workers,
            pad_short=args.pad_short,
            batch_frames=args.batch_size,
            shard=shard,
            on_result=lambda _: bar.update(),
            segments=args.segments,
            force=args.force,
        )
    print(
        f"{args.out}: audio {encoders.audio.name} ({encoders.audio.dim}-d), "  # type: ignore[union-attr]
        f"visual {encoders.visual.name} ({encoders.visual.dim}-d), "  # type: ignore[union-attr]
        f"{len(listing.class_names)} classes" + (f", shard {args.shard}" if shard else "")
    )
    print(report.summary(), file=sys.stderr if report.skipped else sys.stdout)
    fell_back = encoders.audio is not None and encoders.audio.name != args.audio_encoder
    if fell_back:  # aisfx was asked for but is not installed
        print(f"warning: {aisfx_missing_note()}", file=sys.stderr)
    return 0
