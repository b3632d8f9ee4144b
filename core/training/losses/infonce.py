"""Symmetric audio-visual contrastive loss (CLIP-style): the `infonce` baseline, and psd's
contrastive term (``loss.contrastive_weight``)."""

from __future__ import annotations

import torch
from torch import nn


class InfoNCE(nn.Module):
    """``0.5 * (CE(Z_a Z_v^T / tau, T) + CE(Z_v Z_a^T / tau, T^T))`` over the batch.

    The target T is each clip's own partner (the identity) by default. ``targets`` (n x n, audio
    rows, visual columns, non-negative) replaces it by a soft one: each row, and for the other
    direction each column, is normalised to sum to 1 (a row of zeros is not allowed; psd passes
    S with its diagonal set to 1, so that a clip's partner and the clips the labels or the teacher
    put in its class are the positives)."""

    def __init__(self, temperature: float = 0.07):
        super().__init__()
        self.temperature = temperature

    def forward(
        self, za: torch.Tensor, zv: torch.Tensor, targets: torch.Tensor | None = None
    ) -> torch.Tensor:
        logits = za @ zv.T / self.temperature
        ce = nn.functional.cross_entropy
        if targets is None:
            target = torch.arange(len(za), device=za.device)
            return 0.5 * (ce(logits, target) + ce(logits.T, target))
        a2v = targets / targets.sum(dim=1, keepdim=True)
        v2a = targets.T / targets.T.sum(dim=1, keepdim=True)
        return 0.5 * (ce(logits, a2v) + ce(logits.T, v2a))
