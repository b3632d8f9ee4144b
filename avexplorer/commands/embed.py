"""``avexplorer embed RUN_DIR/model.pt DATA.h5 --split test --out EMB.npz``"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from avexplorer.commands.common import add_model_split_args, load_model_and_split
from core.embedding import embed_split


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embed",
        help="write a split's embeddings to an .npz file",
        description="Writes keys audio, visual (float32, L2-normalised), labels and class_names.",
    )
    add_model_split_args(p)
    p.add_argument("--out", required=True)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model, ckpt, split, device = load_model_and_split(args)
    audio, visual = embed_split(model, split, device)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        audio=audio,
        visual=visual,
        labels=split.labels.astype(np.int64),
        class_names=np.array(ckpt.class_names),
    )
    print(f"wrote {out}: {len(split)} pairs, {audio.shape[1]}-d")
    return 0
