"""``avexplorer embed RUN_DIR/model.pt DATA.h5 --split test --out EMB.npz``"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from avexplorer.commands.common import load_data
from avexplorer.commands.eval import check_compatible
from core.checkpoint import load_checkpoint
from core.device import resolve_device
from core.embedding import embed_split


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embed",
        help="write a split's embeddings to an .npz file",
        description="Writes keys audio, visual (float32, L2-normalised) and labels.",
    )
    p.add_argument("checkpoint")
    p.add_argument("data")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="auto")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    data = load_data(args.data, ckpt.config)
    check_compatible(ckpt, data, args.checkpoint)
    split = data.split(args.split)
    device = resolve_device(args.device)
    audio, visual = embed_split(ckpt.build_model(device), split, device)
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
