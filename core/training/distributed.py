"""Data-parallel training with ``torch.distributed``, launched by ``torchrun``.

Every rank holds the (small) feature arrays and walks the same shuffled batches; rank r embeds
the pairs at positions r, r + w, r + 2w, ... of each batch. The embeddings, logits and teacher
probabilities are then gathered, put back in batch order, and every rank computes the same
full-batch loss, so batch-hard mining and the soft alignment S see the whole batch as they would in
one process. Only the local rows keep their autograd graph, so each rank's backward yields its
share of the gradient, and an all-reduce (sum) of the gradients gives exactly the single-process
gradient. One command scales from one process to many machines:

    torchrun --nproc-per-node 2 -m avexplorer train data.h5 --out runs/x       # one machine
    torchrun --nnodes 4 --nproc-per-node 8 --rdzv-endpoint HOST:29400 -m avexplorer train ...

gloo is used on the CPU and nccl on CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from core.errors import UserError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This rank's positions within a batch of n pairs."""
        return slice(self.rank, n, self.world)

    def gather(self, local: torch.Tensor, n: int) -> torch.Tensor:
        """The [n, ...] batch tensor in batch order from every rank's ``local`` shard.

        Rows from other ranks are constants; this rank's rows keep their autograd graph.
        """
        if not self.active:
            return local
        sizes = [len(range(r, n, self.world)) for r in range(self.world)]
        padded = local.new_zeros((max(sizes), *local.shape[1:]))
        padded[: len(local)] = local.detach()
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded)
        rows = [local if r == self.rank else parts[r][: sizes[r]] for r in range(self.world)]
        # cat(rows)[j] holds batch position order[j]; argsort(order) puts positions back in order.
        order = torch.cat([torch.arange(r, n, self.world) for r in range(self.world)])
        return torch.cat(rows)[torch.argsort(order).to(local.device)]

    def sum_gradients(self, model: torch.nn.Module) -> None:
        """All-reduce (sum) every gradient, in one flat buffer to keep the messages few."""
        if not self.active:
            return
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def sum_array(self, x: np.ndarray, device: torch.device) -> np.ndarray:
        """The sum of every rank's ``x`` (float64 kept), on every rank."""
        if not self.active:
            return x
        t = torch.from_numpy(np.ascontiguousarray(x)).to(device)
        dist.all_reduce(t)
        return t.cpu().numpy()

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when ``flag`` is True on any rank (a stop must be collective)."""
        if not self.active:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t)
        return bool(t.item() > 0)


def context_from_env(device: torch.device) -> DistContext:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    The variables are checked first (``launch_from_env``), so a wrong one is a one-line error
    before anything is written, not a failure inside torch.distributed.
    """
    launch = launch_from_env()
    if launch.world <= 1:
        return DistContext()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(launch.local_rank)
        try:
            dist.init_process_group(backend=backend)
        except (RuntimeError, ValueError) as e:  # the rendezvous itself failed
            lines = str(e).strip().splitlines()
            raise UserError(
                f"cannot join the torchrun process group ({lines[0][:200] if lines else e}); "
                "start the run with torchrun, or unset WORLD_SIZE"
            ) from None
    return DistContext(rank=dist.get_rank(), world=dist.get_world_size())


@dataclass(frozen=True)
class Launch:
    """What torchrun's environment says about this process (one process when it says nothing)."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0


def launch_from_env() -> Launch:
    """The checked ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (and, for several processes, the
    rendezvous address torch reads itself)."""
    world = _env_int("WORLD_SIZE", 1, lo=1)
    rank = _env_int("RANK", 0, lo=0)
    local = _env_int("LOCAL_RANK", 0, lo=0)
    if world == 1:
        return Launch(1, rank, local)
    if rank >= world:
        raise UserError(f"RANK={rank} is not below WORLD_SIZE={world}; start the run with torchrun")
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise UserError(
                f"WORLD_SIZE={world} but {name} is not set: several processes need torchrun to "
                "start them (or unset WORLD_SIZE for one process)"
            )
    _env_int("MASTER_PORT", 0, lo=1, hi=65535)
    return Launch(world, rank, local)


def _env_int(name: str, default: int, lo: int, hi: int | None = None) -> int:
    text = os.environ.get(name)
    if text is None or text.strip() == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"{name}={text[:40]!r} is not a whole number") from None
    if value < lo or (hi is not None and value > hi):
        limit = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise UserError(f"{name}={value} is out of range ({limit})")
    return value
