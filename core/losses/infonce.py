"""The `infonce` baseline: symmetric audio-visual contrastive loss on pairs (CLIP-style)."""

from __future__ import annotations

import torch
from torch import nn


class InfoNCE(nn.Module):
    def __init__(self, temperature: float = 0.07):
        super().__init__()
        self.temperature = temperature

    def forward(self, za: torch.Tensor, zv: torch.Tensor) -> torch.Tensor:
        logits = za @ zv.T / self.temperature
        target = torch.arange(len(za), device=za.device)
        ce = nn.functional.cross_entropy
        return 0.5 * (ce(logits, target) + ce(logits.T, target))
