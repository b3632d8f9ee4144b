"""l_soft: cross-modal triplets over unannotated anchors, weighted by the soft alignment S.

For an audio anchor i, every (visual positive p, visual negative n) term is weighted by
S_ip * (1 - S_in): how likely p shares i's class times how likely n does not. Visual anchors use
S transposed. The loss is the weighted hinge sum over the weights' sum (docs/method.md).
"""

from __future__ import annotations

import torch
from torch import nn

from core.losses.distances import Distance, cosine_distance


class SoftCrossModalTriplet(nn.Module):
    def __init__(self, margin: float = 0.2, distance: Distance = cosine_distance):
        super().__init__()
        self.margin = margin
        self.distance = distance

    def forward(
        self, za: torch.Tensor, zv: torch.Tensor, soft: torch.Tensor, anchors: torch.Tensor
    ) -> torch.Tensor:
        """za, zv: [n, d] embeddings of the batch's pairs; soft: [n, n] S (audio rows, visual
        columns); anchors: [n] bool, the pairs whose two modalities act as anchors (the set U)."""
        if not anchors.any():
            return za.sum() * 0.0
        a2v = self._direction(self.distance(za[anchors], zv), soft[anchors])
        v2a = self._direction(self.distance(zv[anchors], za), soft.T[anchors])
        return 0.5 * (a2v + v2a)

    def _direction(self, d: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        # d, s: [u, n] distances and alignment probabilities of u anchors to n candidates.
        hinge = torch.relu(d[:, :, None] - d[:, None, :] + self.margin)  # [u, p, n]
        weight = s[:, :, None] * (1.0 - s[:, None, :])
        n = d.shape[1]
        weight = weight * (
            1.0 - torch.eye(n, dtype=d.dtype, device=d.device)
        )  # p == n is no triplet
        total = weight.sum()
        if total <= 0:
            return d.sum() * 0.0
        return (weight * hinge).sum() / total
