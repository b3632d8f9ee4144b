"""l_cross: the cross-modal triplet loss on hard labels, in both directions."""

from __future__ import annotations

import torch
from torch import nn

from core.training.losses.distances import Distance, cosine_distance
from core.training.losses.miners import Miner, batch_hard


class CrossModalTriplet(nn.Module):
    """Audio anchors against visual positives/negatives and visual anchors against audio,
    averaged; each direction is the mean hinge max(0, d_ap - d_an + margin) over mined triplets."""

    def __init__(
        self, margin: float = 0.2, miner: Miner = batch_hard, distance: Distance = cosine_distance
    ):
        super().__init__()
        self.margin = margin
        self.miner = miner
        self.distance = distance

    def forward(self, za: torch.Tensor, zv: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        same = labels[:, None] == labels[None, :]
        return 0.5 * (self._direction(za, zv, same) + self._direction(zv, za, same))

    def _direction(
        self, anchors: torch.Tensor, others: torch.Tensor, same: torch.Tensor
    ) -> torch.Tensor:
        d_ap, d_an = self.miner(self.distance(anchors, others), same, self.margin)
        if d_ap.numel() == 0:  # no anchor has both a positive and a negative in this batch
            return anchors.sum() * 0.0
        return torch.relu(d_ap - d_an + self.margin).mean()
