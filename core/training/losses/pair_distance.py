"""l_dis: pulls the audio and visual embeddings of the same clip together."""

from __future__ import annotations

import torch
from torch import nn


class PairDistance(nn.Module):
    def forward(self, za: torch.Tensor, zv: torch.Tensor) -> torch.Tensor:
        """Mean squared Euclidean distance ||f_a(a_i) - f_v(v_i)||^2 over the batch."""
        return (za - zv).pow(2).sum(dim=1).mean()
