"""``avexplorer compare RUN_A/model.pt RUN_B/model.pt DATA.h5 [--split test] [--json]``:
how two checkpoints differ on the same split, class by class."""

from __future__ import annotations

import argparse
import json

import numpy as np

from avexplorer.commands.eval import digits, number, split_metrics
from core.errors import UserError
from core.evaluation.metrics import CrossModalMetrics
from core.training.checkpoint import load_checkpoint


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="per-class AP of two checkpoints side by side (B - A)")
    p.add_argument("checkpoint_a")
    p.add_argument("checkpoint_b")
    p.add_argument("data")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.split == "val":
        configs = [load_checkpoint(p).config for p in (args.checkpoint_a, args.checkpoint_b)]
        carving = {(c.seed, c.data.val_fraction) for c in configs}
        if len(carving) > 1:
            raise UserError(
                "the two runs carve different val splits (seed or val fraction differ); "
                "compare them on --split test"
            )
    results = []
    for path in (args.checkpoint_a, args.checkpoint_b):
        ns = argparse.Namespace(checkpoint=path, data=args.data, split=args.split)
        ns.device = args.device
        results.append(split_metrics(ns))
    (a, names_a), (b, names_b) = results
    if names_a != names_b:
        raise UserError(f"{args.checkpoint_a} and {args.checkpoint_b} have different classes")
    if args.json:
        print(json.dumps(comparison(a, b, names_a), allow_nan=False))
    else:
        print(report(a, b, names_a, args))
    return 0


def comparison(a: CrossModalMetrics, b: CrossModalMetrics, names: list[str]) -> dict:
    """{"a": summary, "b": summary, "difference": {"a2v": {class: B - A}, "v2a": ...}}."""
    sa, sb = a.summary(names), b.summary(names)
    diff: dict[str, dict[str, float | None]] = {}
    for d in ("a2v", "v2a"):
        diff[d] = {}
        for c, va in sa["per_class"][d].items():
            vb = sb["per_class"][d].get(c)
            diff[d][c] = vb - va if va is not None and vb is not None else None
    return {"a": sa, "b": sb, "difference": diff}


def report(
    a: CrossModalMetrics, b: CrossModalMetrics, names: list[str], args: argparse.Namespace
) -> str:
    lines = [f"A: {args.checkpoint_a}", f"B: {args.checkpoint_b}", f"{args.split} split", ""]
    head = f"{'':20} {'A2V A':>8} {'A2V B':>8} {'B-A':>8}   {'V2A A':>8} {'V2A B':>8} {'B-A':>8}"
    lines.append(head)
    columns = [m.headline() for m in (a.a2v, b.a2v, a.v2a, b.v2a)]
    for (name, x1), (_, y1), (_, x2), (_, y2) in zip(*columns, strict=True):
        cells = [number(v, digits=digits(name)) for v in (x1, y1, y1 - x1, x2, y2, y2 - x2)]
        lines.append(f"{name:20} {' '.join(cells[:3])}   {' '.join(cells[3:])}")
    lines += ["", head.replace(" " * 20, f"{'per-class AP':20}", 1)]
    ap = [m.class_ap() for m in (a.a2v, b.a2v, a.v2a, b.v2a)]
    order = np.argsort(-np.nan_to_num((ap[1] - ap[0]) + (ap[3] - ap[2]), nan=-np.inf))
    for c in order:
        if not (a.a2v.labels == c).any():
            continue
        lines.append(
            f"{names[c][:20]:20} {number(ap[0][c])} {number(ap[1][c])} "
            f"{number(ap[1][c] - ap[0][c])}   {number(ap[2][c])} {number(ap[3][c])} "
            f"{number(ap[3][c] - ap[2][c])}"
        )
    lines.append("(classes by B's gain over A, both directions summed)")
    return "\n".join(lines)
