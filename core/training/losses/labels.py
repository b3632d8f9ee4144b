"""l_lab: cross-entropy of the shared label head on both modalities' embeddings."""

from __future__ import annotations

import torch
from torch import nn


class LabelLoss(nn.Module):
    def forward(
        self, logits_a: torch.Tensor, logits_v: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        ce = nn.functional.cross_entropy
        return 0.5 * (ce(logits_a, labels) + ce(logits_v, labels))
