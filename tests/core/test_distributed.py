"""Data-parallel training on 2 processes (gloo) gives the single-process result."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from core.data.synthetic import make_dataset
from core.training.checkpoint import load_checkpoint
from core.training.config import method_config
from core.training.distributed import DistContext
from core.training.events import RunFinished
from core.training.loop import train

# No dropout, so that sharding the batch changes nothing but the order of float sums.
OVERRIDES = {
    "optim.epochs": 2,
    "optim.batch_size": 30,
    "model.hidden": 32,
    "model.dim": 16,
    "model.dropout": 0.0,
    "threads": 1,
    "snapshot_every": 0,
}


def _config(method: str):
    """``psd-few``: psd with three quarters of the train labels hidden (mixed batches)."""
    if method == "psd-few":
        return method_config("psd").replace(**OVERRIDES, **{"data.label_fraction": 0.25})
    return method_config(method).replace(**OVERRIDES)


def _worker(rank: int, world: int, init_file: str, out_dir: str, method: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        cfg = _config(method)
        ctx = DistContext(rank=rank, world=world)
        events = list(train(cfg, make_dataset("tiny", seed=0), out_dir=out_dir, dist=ctx))
        assert isinstance(events[-1], RunFinished)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("method", ["psd", "psd-few", "infonce"])
def test_two_processes_match_one(tmp_path, method):
    single = tmp_path / "single"
    list(train(_config(method), make_dataset("tiny", seed=0), out_dir=single))
    mp.spawn(
        _worker,
        args=(2, str(tmp_path / "init"), str(tmp_path / "ddp"), method),
        nprocs=2,
        join=True,
    )
    a = load_checkpoint(single / "last.pt").model
    b = load_checkpoint(tmp_path / "ddp" / "last.pt").model
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-4, rtol=1e-4), k


def test_shards_cover_the_batch_and_gather_is_identity_alone():
    parts = [DistContext(rank=r, world=3).shard(10) for r in range(3)]
    covered = sorted(i for s in parts for i in range(10)[s])
    assert covered == list(range(10))
    x = torch.randn(4, 2)
    assert DistContext().gather(x, 4) is x
