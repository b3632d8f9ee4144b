"""``avexplorer embed RUN_DIR/model.pt DATA.h5 --split test --out EMB.npz``"""

from __future__ import annotations

import argparse

from avexplorer.commands.common import add_model_split_args, load_model_and_split
from core.atomic import refuse_overwrite
from core.training.embedding import embed_split, save_embeddings


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embed",
        help="write a split's embeddings to an .npz file",
        description="Writes keys audio, visual (float32, L2-normalised), labels, class_names, "
        "paths and epochs_trained (the format the app's File > Export embeddings writes).",
    )
    add_model_split_args(p)
    p.add_argument("--out", required=True)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    refuse_overwrite(
        args.out,
        [("the checkpoint it reads", args.checkpoint), ("the feature file it reads", args.data)],
    )
    model, ckpt, split, device = load_model_and_split(args)
    audio, visual = embed_split(model, split, device)
    out = save_embeddings(args.out, audio, visual, split, ckpt.class_names, ckpt.epoch)
    print(f"wrote {out}: {len(split)} pairs, {audio.shape[1]}-d")
    return 0
