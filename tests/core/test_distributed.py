"""Data-parallel training on 2 processes (gloo) gives the single-process result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from core.data.dataset import load_h5, save_h5
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


def _worker(
    rank: int, world: int, init_file: str, out_dir: str, method: str, h5: str | None = None
) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        cfg = _config(method)
        ctx = DistContext(rank=rank, world=world)
        if h5 is None:
            data = make_dataset("tiny", seed=0)
        else:  # every process streams the same file
            data = load_h5(h5, lazy_train=True)
            cfg = cfg.replace(**{"data.stream_above_mb": "0"})
        events = list(train(cfg, data, out_dir=out_dir if rank == 0 else None, dist=ctx))
        assert isinstance(events[-1], RunFinished)
        if h5 is not None:
            read = {"audio": data.train.audio.rows_read, "visual": data.train.visual.rows_read}
            Path(out_dir, f"rows_read_{rank}.json").write_text(json.dumps(read))
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


@pytest.mark.parametrize("method", ["psd", "psd-few"])
def test_two_processes_streaming_one_file_match_one_process(tmp_path, method):
    path = tmp_path / "tiny.h5"
    data = make_dataset("tiny", seed=0)
    save_h5(path, data)
    single = tmp_path / "single"
    list(train(_config(method), load_h5(path), out_dir=single))
    ddp = tmp_path / "ddp"
    ddp.mkdir()
    mp.spawn(
        _worker,
        args=(2, str(tmp_path / "init"), str(ddp), method, str(path)),
        nprocs=2,
        join=True,
    )
    a = load_checkpoint(single / "last.pt").model
    b = load_checkpoint(ddp / "last.pt").model
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-4, rtol=1e-4), k
    # The second process reads rows of its half of the batches only (the input statistics'
    # single chunk and the data's fingerprint are the first process's): never the whole file.
    n = len(data.train)
    reads = [json.loads((ddp / f"rows_read_{r}.json").read_text()) for r in range(2)]
    assert reads[0]["audio"] == reads[0]["visual"] > 2 * n
    assert reads[1]["audio"] == reads[1]["visual"]
    assert n // 2 <= reads[1]["audio"] < n


def test_shards_cover_the_batch_and_gather_is_identity_alone():
    parts = [DistContext(rank=r, world=3).shard(10) for r in range(3)]
    covered = sorted(i for s in parts for i in range(10)[s])
    assert covered == list(range(10))
    x = torch.randn(4, 2)
    assert DistContext().gather(x, 4) is x
