"""``avexplorer audit DATA.h5 [--checkpoint RUN/model.pt] [--top N] [--json] [--out DIR]``:
the train pairs whose label is likely wrong and those whose sound does not belong to the picture
(core/exploration/audit.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit",
        help="find train pairs with a wrong label or a sound that does not belong to the picture",
        description="Rank the labelled pairs of the file's train arrays (including those the "
        "loader would carve out for val; never test) by two suspicions, each scored by models "
        "that did not train on the pair (K-fold): a label issue (both halves agree on another "
        "class; the likely class is given) and a mismatched pair (the sound and the picture do "
        "not find each other). Indices are 0-based rows of the file's train arrays.",
    )
    p.add_argument("data", metavar="DATA.h5")
    p.add_argument(
        "--checkpoint",
        metavar="RUN/model.pt",
        help="audit in this model's embedding space instead of on the raw features (a model "
        "trained on these very pairs has fitted their labels: prefer one trained on other data)",
    )
    p.add_argument("--top", type=int, metavar="N", help="keep the N most suspect of each kind")
    p.add_argument("--folds", type=int, default=5, help="out-of-fold models (default 5)")
    p.add_argument("--seed", type=int, default=0, help="fold assignment and candidate draws")
    p.add_argument(
        "--json",
        action="store_true",
        help='print as the last line {"label_issues": [{"index", "given", "suggested", "score"}, '
        '...], "mismatched_pairs": [{"index", "score"}, ...]}, most suspect first',
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="also write DIR/audit.json (that JSON with class names and clip paths)",
    )
    p.add_argument(
        "--cleaned",
        metavar="DEST.h5",
        help="also save a copy of DATA.h5 with the listed label issues given their suggested class "
        "and the listed mismatched pairs dropped (never over DATA.h5; clip paths kept)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from core.data.dataset import load_h5
    from core.exploration.audit import AuditConfig, audit_pairs, file_train

    if args.top is not None and args.top < 1:
        raise UserError("--top must be at least 1")
    if args.folds < 2:
        raise UserError("--folds must be at least 2")
    data = load_h5(args.data)
    split = file_train(data)
    audio, visual = split.audio, split.visual
    if args.checkpoint:
        audio, visual = _embedded(args.checkpoint, data, split)

    def progress(done: int, total: int, what: str) -> None:
        print(f"audit: [{done}/{total}] {what}", file=sys.stderr, flush=True)

    audit = audit_pairs(
        audio,
        visual,
        split.labels,
        data.num_classes,
        AuditConfig(folds=args.folds, seed=args.seed),
        progress,
    )
    result = audit.as_dict(args.top)
    if args.out:
        _write(Path(args.out), result, data.class_names, split.paths)
    if args.cleaned:
        from core.data.labels import write_cleaned_copy

        relabel = {x["index"]: x["suggested"] for x in result["label_issues"]}
        drop = [x["index"] for x in result["mismatched_pairs"]]
        dest = write_cleaned_copy(data, relabel, drop, args.cleaned)
        print(
            f"audit: saved {dest} ({len(relabel)} relabelled, {len(drop)} dropped)",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(result))
        return 0
    names = data.class_names
    print(
        f"{len(audit.rows)} labelled train pairs audited: {int(audit.mislabelled.sum())} label "
        f"issues, {int(audit.mismatched.sum())} mismatched pairs"
    )
    print("\nlabel issues (row, given -> suggested, score):")
    for x in result["label_issues"]:
        print(
            f"  {x['index']:6d}  {names[x['given']]} -> {names[x['suggested']]}  "
            f"{x['score']:.3f}{_path(split.paths, x['index'])}"
        )
    print("\nmismatched pairs (row, score: share of other clips closer than its own half):")
    for x in result["mismatched_pairs"]:
        print(f"  {x['index']:6d}  {x['score']:.3f}{_path(split.paths, x['index'])}")
    return 0


def _path(paths: tuple[str, ...] | None, i: int) -> str:
    return f"  {paths[i]}" if paths is not None else ""


def _embedded(checkpoint: str, data, split):
    """Both halves of ``split`` in the checkpoint's embedding space."""
    from core.training.checkpoint import data_differences, load_checkpoint
    from core.training.embedding import embed_features

    ckpt = load_checkpoint(checkpoint)
    differences = data_differences(ckpt, data)
    if differences:
        raise UserError(f"{checkpoint} does not fit {data.source}: {'; '.join(differences)}")
    model = ckpt.build_model("cpu")
    return embed_features(model, split.audio, "audio"), embed_features(
        model, split.visual, "visual"
    )


def _write(out: Path, result: dict, names: tuple[str, ...], paths) -> None:
    from core.atomic import atomic_write, prepare_folder

    def described(x: dict) -> dict:
        extra = {"path": paths[x["index"]]} if paths is not None else {}
        if "given" in x:
            extra |= {"given_name": names[x["given"]], "suggested_name": names[x["suggested"]]}
        return x | extra

    full = {kind: [described(x) for x in rows] for kind, rows in result.items()}
    prepare_folder(out, "--out folder")
    with atomic_write(out / "audit.json", "w", encoding="utf-8") as f:
        f.write(json.dumps(full, indent=1) + "\n")
