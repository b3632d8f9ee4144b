"""Loading a checkpoint for queries and the map: refused when it was trained on other data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avexplorer.projections import EpochEmbeddings
from core.errors import UserError


class OtherDataset(UserError):
    """The checkpoint was trained on a dataset unlike the open one."""


def load_checkpoint_for(path: str | Path, data: Any) -> tuple[Any, Any, EpochEmbeddings]:
    """(checkpoint, model, test embeddings of ``data``); ``OtherDataset`` says what differs."""
    from core.training.checkpoint import data_differences, load_checkpoint
    from core.training.embedding import embed_split

    if data is None:
        raise UserError("open a dataset before loading a checkpoint")
    ckpt = load_checkpoint(path)
    differences = data_differences(ckpt, data)
    if differences:
        raise OtherDataset(
            f"{Path(path).name} was trained on other data than the open dataset: "
            + "; ".join(differences)
            + (f". It was trained on {ckpt.data_source}." if ckpt.data_source else ".")
        )
    model = ckpt.build_model("cpu")
    audio, visual = embed_split(model, data.test, "cpu")
    return ckpt, model, EpochEmbeddings(ckpt.epoch, audio, visual, model, Path(path))


def checkpoint_label(ckpt: Any, path: str | Path) -> str:
    """'psd · demo.h5 · 2026-12-01 14:02 · best MAP 0.612' for the Recent runs menu."""
    import time

    best = ckpt.run.get("best_avg") if isinstance(ckpt.run, dict) else None
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(Path(path).stat().st_mtime))
    parts = [
        ckpt.config.loss.method,
        Path(ckpt.data_source).name if ckpt.data_source else "?",
        when,
        f"best MAP {best:.3f}" if isinstance(best, float) and best >= 0 else "no val MAP",
    ]
    return " · ".join(parts)
