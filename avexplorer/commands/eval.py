"""``avexplorer eval RUN_DIR/model.pt DATA.h5 [--split test] [--json] [--full]``"""

from __future__ import annotations

import argparse
import json

import numpy as np

from avexplorer.commands.common import add_model_split_args, load_model_and_split
from core.data.dataset import Split
from core.errors import UserError
from core.evaluation.metrics import CrossModalMetrics, cross_modal_metrics, scoring_problem
from core.training.embedding import embed_split
from core.training.loop import evaluate


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="cross-modal retrieval MAP of a checkpoint on a split")
    add_model_split_args(p)
    p.add_argument(
        "--json",
        action="store_true",
        help='print one line {"a2v": ..., "v2a": ..., "avg": ..., "n": ...}',
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="also per-class AP, Recall@1/5/10, median rank, MRR, MAP@R and R-precision "
        "(docs/method.md, 'Evaluation')",
    )
    p.set_defaults(run=run)


def split_metrics(args: argparse.Namespace) -> tuple[CrossModalMetrics, list[str]]:
    """Every metric of the checkpoint ``args.checkpoint`` on its split, and the class names."""
    model, ckpt, split, device = load_model_and_split(args)
    split = scored_pairs(split, args)
    audio, visual = embed_split(model, split, device)
    names = list(ckpt.class_names)
    return cross_modal_metrics(audio, visual, split.labels, num_classes=len(names)), names


def scored_pairs(split: Split, args: argparse.Namespace) -> Split:
    """The labelled pairs of ``split``: retrieval is scored by class, so a pair without a label
    (a train split with unlabelled clips) can be neither a query nor a match."""
    if not split.labelled.all():
        if not split.labelled.any():
            raise UserError(f"{args.data}: the {args.split} split has no labelled pairs to score")
        split = split.subset(np.flatnonzero(split.labelled))
    problem = scoring_problem(split.labels)
    if problem:
        raise UserError(f"{args.data}: the {args.split} split cannot be scored: {problem}")
    return split


def run(args: argparse.Namespace) -> int:
    if args.full:
        metrics, names = split_metrics(args)
        if args.json:
            print(json.dumps(metrics.summary(names), allow_nan=False))
        else:
            print(full_report(metrics, names, args.split))
        return 0
    model, _, split, device = load_model_and_split(args)
    split = scored_pairs(split, args)
    scores = evaluate(model, split, device, f"the {args.split}")
    if args.json:
        print(json.dumps(scores.as_dict(ranks=False)))
    else:
        print(
            f"{args.split} MAP ({scores.sample_note() or f'{scores.n} queries'} per "
            f"direction): a2v {scores.a2v:.4f}  v2a {scores.v2a:.4f}  avg {scores.avg:.4f}"
        )
    return 0


def number(x: float, width: int = 8, digits: int = 4) -> str:
    """A table cell; "-" for an undefined (NaN) value."""
    return f"{x:{width}.{digits}f}" if x == x else f"{'-':>{width}}"


def digits(name: str) -> int:
    return 1 if name == "median rank" else 4


def full_report(metrics: CrossModalMetrics, names: list[str], split: str) -> str:
    a2v, v2a = metrics.a2v, metrics.v2a
    lines = [f"{split} split: {len(a2v.labels)} pairs, {len(names)} classes", ""]
    lines.append(f"{'':20} {'A2V':>8} {'V2A':>8}")
    for (name, x), (_, y) in zip(a2v.headline(), v2a.headline(), strict=True):
        lines.append(f"{name:20} {number(x, digits=digits(name))} {number(y, digits=digits(name))}")
    lines += ["", f"{'per-class AP':20} {'A2V':>8} {'V2A':>8} {'pairs':>6}"]
    ap_a, ap_v = a2v.class_ap(), v2a.class_ap()
    counts = [int((a2v.labels == c).sum()) for c in range(len(names))]
    for c, name in enumerate(names):
        if counts[c]:
            lines.append(f"{name[:20]:20} {number(ap_a[c])} {number(ap_v[c])} {counts[c]:6d}")
    if np.isnan(ap_a).any() or np.isnan(ap_v).any():
        lines.append("(-: no query of the class has another item of its class to find)")
    return "\n".join(lines)
