"""Triplet miners: from a distance matrix and label masks, pick (d_ap, d_an) pairs to penalise.

Rows are anchors (one modality), columns candidates (the other modality).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Miner = Callable[[torch.Tensor, torch.Tensor, float], tuple[torch.Tensor, torch.Tensor]]


def batch_hard(
    d: torch.Tensor, same: torch.Tensor, margin: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per anchor, its farthest positive and nearest negative (anchors lacking either are
    dropped)."""
    del margin  # batch-hard does not need it to choose
    inf = torch.finfo(d.dtype).max
    has_pos = same.any(dim=1)
    has_neg = (~same).any(dim=1)
    keep = has_pos & has_neg
    d_ap = torch.where(same, d, -inf).amax(dim=1)
    d_an = torch.where(~same, d, inf).amin(dim=1)
    return d_ap[keep], d_an[keep]


def semi_hard(
    d: torch.Tensor, same: torch.Tensor, margin: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """For every (anchor, positive) pair, the nearest negative farther than the positive but within
    the margin (FaceNet's semi-hard rule); where no such negative exists, the farthest negative,
    which then usually contributes nothing (as in TensorFlow Addons' semi-hard loss)."""
    inf = torch.finfo(d.dtype).max
    anchor, pos = torch.nonzero(same, as_tuple=True)
    keep = (~same[anchor]).any(dim=1)
    anchor, pos = anchor[keep], pos[keep]
    d_ap = d[anchor, pos]
    d_neg = d[anchor]  # [P, m]
    neg = ~same[anchor]
    window = neg & (d_neg > d_ap[:, None]) & (d_neg < d_ap[:, None] + margin)
    semi = torch.where(window, d_neg, inf).amin(dim=1)
    easiest = torch.where(neg, d_neg, -inf).amax(dim=1)
    d_an = torch.where(window.any(dim=1), semi, easiest)
    return d_ap, d_an


MINERS: dict[str, Miner] = {"batch_hard": batch_hard, "semi_hard": semi_hard}
