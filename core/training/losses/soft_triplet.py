"""l_soft: cross-modal triplets over unannotated anchors, weighted by the soft alignment S.

For an audio anchor i, every (visual positive p, visual negative n) term with p != n is weighted
by S_ip * (1 - S_in): how likely p shares i's class times how likely n does not. Visual anchors
use S transposed. The loss is the weighted hinge sum over the weights' sum (docs/method.md).
"""

from __future__ import annotations

import torch
from torch import nn

from core.training.losses.distances import Distance, cosine_distance
from core.training.losses.rowsort import argsort_rows


def weighted_hinge_sum(
    d: torch.Tensor, w_pos: torch.Tensor, w_neg: torch.Tensor, margin: float
) -> torch.Tensor:
    """Per row i: the sum over all (p, n) of w_pos[i, p] w_neg[i, n] relu(d[i, p] - d[i, n] + m).

    Computed in O(n log n) per row instead of materialising the [rows, n, n] hinge tensor: the
    hinge of (p, n) is active when d_in - m < d_ip. Each row's positives (at d_ip) and negatives
    (at d_in - m) are merged into one sorted sequence; running sums of the negatives' w and w * d
    then give, at each positive's place, the weight and weighted distance of the negatives below
    it, so that its terms sum to d_ip * sum(w) - sum(w * d). Gradients flow through d exactly as
    in the dense form (a tie is a hinge at 0, whose subgradient either way is a valid one).
    """
    zeros = torch.zeros_like(d)
    merged = torch.cat([d, d - margin], dim=1)  # [rows, 2n]: the positives, then the negatives
    order = argsort_rows(merged)
    value = merged.gather(1, order)
    neg_w = torch.cat([zeros, w_neg], dim=1).gather(1, order)  # 0 at the positives' places
    pos_w = torch.cat([w_pos, zeros], dim=1).gather(1, order)  # 0 at the negatives' places
    below_w = neg_w.cumsum(1)
    below_wd = (neg_w * value).cumsum(1)
    return (pos_w * (value * below_w - below_wd)).sum(1)


class SoftCrossModalTriplet(nn.Module):
    def __init__(self, margin: float = 0.2, distance: Distance = cosine_distance):
        super().__init__()
        self.margin = margin
        self.distance = distance

    def forward(
        self,
        za: torch.Tensor,
        zv: torch.Tensor,
        soft: torch.Tensor,
        anchors: torch.Tensor,
        candidates: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """za, zv: [n, d] embeddings of the batch's pairs; soft: [n, n] S (audio rows, visual
        columns); anchors: [n] bool, the pairs whose two modalities act as anchors (the set U);
        candidates: [n] bool, the pairs that may serve as positives or negatives (all if None)."""
        if not anchors.any():
            return za.sum() * 0.0
        # Both directions in one pass: audio anchors' rows of S on top, visual anchors' below.
        d = torch.cat([self.distance(za[anchors], zv), self.distance(zv[anchors], za)])
        s = torch.cat([soft[anchors], soft.T[anchors]])
        w_neg = 1.0 - s
        if candidates is not None:
            s, w_neg = s * candidates, w_neg * candidates
        # p == n is no triplet: its term is margin * S_ip (1 - S_ip); take it out of both sums.
        same = (s * w_neg).sum(1)
        weight = s.sum(1) * w_neg.sum(1) - same
        hinge = weighted_hinge_sum(d, s, w_neg, self.margin) - self.margin * same
        u = int(anchors.sum())
        return 0.5 * (_normalised(hinge[:u], weight[:u]) + _normalised(hinge[u:], weight[u:]))


def _normalised(hinge: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """One direction's weighted hinge sum over its weights' sum (0 when S leaves no triplet)."""
    total = weight.sum()
    return hinge.sum() / total if total > 0 else hinge.sum() * 0.0
