"""Choosing the torch device and CPU thread count."""

from __future__ import annotations

import torch

from core.errors import UserError


def resolve_device(name: str = "auto") -> torch.device:
    """ "auto" picks CUDA when a GPU is present, else the CPU; any explicit name is checked here,
    before a run writes anything, so that a device this machine lacks never fails a run later."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise UserError(f"unknown device {name!r}; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(
                f"device {name!r} asked for, but torch sees no CUDA GPU; use --device cpu"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise UserError(
                f"device {name!r} asked for, but torch sees {count} CUDA GPU"
                f"{'s' if count != 1 else ''} (cuda:0..cuda:{count - 1})"
            )
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise UserError(f"device {name!r} asked for, but this machine has no MPS (Apple GPU)")
    elif device.type != "cpu":
        raise UserError(f"unknown device {name!r}; use auto, cpu or cuda[:N]")
    return device


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads for torch (0 keeps torch's default)."""
    if threads > 0:
        torch.set_num_threads(threads)
