"""``avexplorer eval RUN_DIR/model.pt DATA.h5 [--split test] [--json]``"""

from __future__ import annotations

import argparse
import json

from avexplorer.commands.common import add_model_split_args, load_model_and_split
from core.training import evaluate


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="cross-modal retrieval MAP of a checkpoint on a split")
    add_model_split_args(p)
    p.add_argument(
        "--json",
        action="store_true",
        help='print one line {"a2v": ..., "v2a": ..., "avg": ..., "n": ...}',
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model, _, split, device = load_model_and_split(args)
    scores = evaluate(model, split, device)
    if args.json:
        print(json.dumps(scores.as_dict()))
    else:
        print(
            f"{args.split} MAP ({scores.n} queries per direction): a2v {scores.a2v:.4f}  "
            f"v2a {scores.v2a:.4f}  avg {scores.avg:.4f}"
        )
    return 0
