"""``avexplorer eval RUN_DIR/model.pt DATA.h5 [--split test] [--json]``"""

from __future__ import annotations

import argparse
import json

from avexplorer.commands.common import load_data
from core.checkpoint import load_checkpoint
from core.device import resolve_device
from core.errors import UserError
from core.training import evaluate


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="cross-modal retrieval MAP of a checkpoint on a split")
    p.add_argument("checkpoint")
    p.add_argument("data")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument(
        "--json",
        action="store_true",
        help='print one line {"a2v": ..., "v2a": ..., "avg": ..., "n": ...}',
    )
    p.add_argument("--device", default="auto")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    data = load_data(args.data, ckpt.config)
    check_compatible(ckpt, data, args.checkpoint)
    device = resolve_device(args.device)
    scores = evaluate(ckpt.build_model(device), data.split(args.split), device)
    if args.json:
        print(json.dumps(scores.as_dict()))
    else:
        print(
            f"{args.split} MAP ({scores.n} queries per direction): a2v {scores.a2v:.4f}  "
            f"v2a {scores.v2a:.4f}  avg {scores.avg:.4f}"
        )
    return 0


def check_compatible(ckpt, data, path) -> None:
    if (ckpt.audio_dim, ckpt.visual_dim) != (data.audio_dim, data.visual_dim):
        raise UserError(
            f"{path} expects {ckpt.audio_dim}-d audio and {ckpt.visual_dim}-d visual features; "
            f"{data.source} has {data.audio_dim}-d and {data.visual_dim}-d"
        )
