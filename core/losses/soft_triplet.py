"""l_soft: cross-modal triplets over unannotated anchors, weighted by the soft alignment S.

For an audio anchor i, every (visual positive p, visual negative n) term with p != n is weighted
by S_ip * (1 - S_in): how likely p shares i's class times how likely n does not. Visual anchors
use S transposed. The loss is the weighted hinge sum over the weights' sum (docs/method.md).
"""

from __future__ import annotations

import torch
from torch import nn

from core.losses.distances import Distance, cosine_distance


def weighted_hinge_sum(
    d: torch.Tensor, w_pos: torch.Tensor, w_neg: torch.Tensor, margin: float
) -> torch.Tensor:
    """sum over rows i and all (p, n) of w_pos[i, p] * w_neg[i, n] * relu(d[i, p] - d[i, n] + m).

    Computed in O(u n log n) instead of materialising the [u, n, n] hinge tensor: for each p the
    hinge is active for the negatives with d_in < d_ip + m, so sort each row's d_in, and the
    weighted sums of 1 and of d_in below any threshold are two cumulative sums read at the
    threshold's rank. Gradients flow through d exactly as in the dense form.
    """
    shifted = d - margin  # the hinge is active where d_in - m < d_ip
    sorted_d, order = torch.sort(shifted, dim=1)
    w_sorted = w_neg.gather(1, order)
    zero = d.new_zeros(len(d), 1)
    below_w = torch.cat([zero, w_sorted.cumsum(1)], dim=1)
    below_wd = torch.cat([zero, (w_sorted * sorted_d).cumsum(1)], dim=1)
    rank = torch.searchsorted(sorted_d.detach().contiguous(), d.detach().contiguous())
    per_positive = d * below_w.gather(1, rank) - below_wd.gather(1, rank)
    return (w_pos * per_positive).sum()


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
        w_neg = 1.0 - s
        # p == n is no triplet: its term is margin * S_ip (1 - S_ip); take it out of both sums.
        same = (s * w_neg).sum()
        total = s.sum(1) @ w_neg.sum(1) - same
        if total <= 0:
            return d.sum() * 0.0
        return (weighted_hinge_sum(d, s, w_neg, self.margin) - self.margin * same) / total
