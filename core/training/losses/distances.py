"""Distances between two sets of L2-normalised embeddings."""

from __future__ import annotations

from collections.abc import Callable

import torch

Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cosine_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[n, m] matrix of 1 - cos(x_i, y_j) for rows already L2-normalised."""
    return 1.0 - x @ y.T
