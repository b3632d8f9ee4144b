"""Each loss on small hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from core.training.losses import (
    CrossModalTriplet,
    InfoNCE,
    LabelLoss,
    PairDistance,
    SoftCrossModalTriplet,
    batch_hard,
    cosine_distance,
    semi_hard,
)


def unit(*angles: float) -> torch.Tensor:
    """Points on the unit circle at the given angles (radians)."""
    a = torch.tensor(angles, dtype=torch.float64)
    return torch.stack([torch.cos(a), torch.sin(a)], dim=1)


def test_cosine_distance_is_one_minus_cosine():
    x, y = unit(0.0), unit(0.0, math.pi / 2, math.pi)
    assert torch.allclose(
        cosine_distance(x, y), torch.tensor([[0.0, 1.0, 2.0]], dtype=torch.float64)
    )


def test_batch_hard_takes_farthest_positive_and_nearest_negative():
    d = torch.tensor([[0.1, 0.5, 0.3, 0.9], [0.2, 0.4, 0.8, 0.6]])
    same = torch.tensor([[True, True, False, False], [False, True, True, False]])
    d_ap, d_an = batch_hard(d, same, margin=0.2)
    assert d_ap.tolist() == pytest.approx([0.5, 0.8])
    assert d_an.tolist() == pytest.approx([0.3, 0.2])


def test_batch_hard_drops_anchors_without_positive_or_negative():
    d = torch.tensor([[0.1, 0.5], [0.2, 0.4]])
    same = torch.tensor([[True, True], [False, False]])
    d_ap, d_an = batch_hard(d, same, margin=0.2)
    assert d_ap.numel() == 0 and d_an.numel() == 0


def test_semi_hard_picks_nearest_negative_beyond_the_positive_within_margin():
    # anchor 0: positive at 0.3; negatives at 0.2 (hard), 0.4 and 0.45 (semi-hard), 0.9 (easy)
    d = torch.tensor([[0.3, 0.2, 0.4, 0.45, 0.9]])
    same = torch.tensor([[True, False, False, False, False]])
    d_ap, d_an = semi_hard(d, same, margin=0.2)
    assert d_ap.tolist() == pytest.approx([0.3]) and d_an.tolist() == pytest.approx([0.4])


def test_semi_hard_falls_back_to_farthest_negative():
    d = torch.tensor([[0.3, 0.1, 0.9]])
    same = torch.tensor([[True, False, False]])
    _, d_an = semi_hard(d, same, margin=0.2)
    assert d_an.tolist() == pytest.approx([0.9])


@pytest.mark.parametrize("decimals", [1, 6])  # many ties, then almost none
def test_semi_hard_matches_the_rule_checked_pair_by_pair(decimals):
    g = torch.Generator().manual_seed(decimals)
    labels = torch.randint(0, 4, (40,), generator=g)
    same = labels[:, None] == labels[None, :]
    same[3] = False  # an anchor with no positive
    same[5] = True  # and one with no negative
    d = (2 * torch.rand(40, 40, generator=g)).round(decimals=decimals)
    d_ap, d_an = semi_hard(d, same, margin=0.2)
    expected = []
    for i, p in same.nonzero().tolist():
        negatives = d[i][~same[i]]
        if len(negatives) == 0:
            continue
        window = negatives[(negatives > d[i, p]) & (negatives < d[i, p] + 0.2)]
        expected.append((d[i, p], window.min() if len(window) else negatives.max()))
    assert torch.equal(d_ap, torch.stack([e[0] for e in expected]))
    assert torch.equal(d_an, torch.stack([e[1] for e in expected]))


def test_cross_modal_triplet_by_hand():
    # Two classes; audio and visual of class 0 at angle 0 / 0.2, class 1 at pi/2 / 0.3.
    za, zv = unit(0.0, math.pi / 2), unit(0.2, 0.3)
    y = torch.tensor([0, 1])
    loss = CrossModalTriplet(margin=0.2)(za, zv, y)
    d = 1 - za @ zv.T  # audio rows, visual columns
    a2v = (torch.relu(d[0, 0] - d[0, 1] + 0.2) + torch.relu(d[1, 1] - d[1, 0] + 0.2)) / 2
    v2a = (torch.relu(d[0, 0] - d[1, 0] + 0.2) + torch.relu(d[1, 1] - d[0, 1] + 0.2)) / 2
    assert loss.item() == pytest.approx(((a2v + v2a) / 2).item())
    assert loss.item() > 0


def test_cross_modal_triplet_is_zero_when_classes_are_separated_by_the_margin():
    za, zv = unit(0.0, math.pi), unit(0.05, math.pi + 0.05)
    assert CrossModalTriplet(margin=0.2)(za, zv, torch.tensor([0, 1])).item() == 0.0


def test_cross_modal_triplet_without_negatives_is_zero_but_differentiable():
    za = unit(0.0, 0.1).requires_grad_()
    loss = CrossModalTriplet()(za, unit(1.0, 2.0), torch.tensor([3, 3]))
    loss.backward()
    assert loss.item() == 0.0 and za.grad is not None


def test_soft_triplet_matches_the_weighted_sum_by_hand():
    za, zv = unit(0.0, 1.0, 2.0), unit(0.1, 1.2, 2.5)
    s = torch.tensor([[0.9, 0.2, 0.1], [0.3, 0.6, 0.2], [0.1, 0.1, 0.8]], dtype=torch.float64)
    anchors = torch.tensor([True, False, True])
    m = 0.2
    got = SoftCrossModalTriplet(margin=m)(za, zv, s, anchors).item()

    def direction(z_anchor, z_other, weights):
        num = den = 0.0
        for i in (0, 2):
            for p in range(3):
                for n in range(3):
                    if p == n:
                        continue
                    w = weights[i][p] * (1 - weights[i][n])
                    d_ap = 1 - float(z_anchor[i] @ z_other[p])
                    d_an = 1 - float(z_anchor[i] @ z_other[n])
                    num += w * max(0.0, d_ap - d_an + m)
                    den += w
        return num / den

    want = 0.5 * (direction(za, zv, s.tolist()) + direction(zv, za, s.T.tolist()))
    assert got == pytest.approx(want)


def test_soft_triplet_with_no_anchor_is_zero():
    za = unit(0.0, 1.0)
    assert SoftCrossModalTriplet()(za, za, torch.ones(2, 2), torch.tensor([False, False])) == 0


def test_label_loss_averages_both_modalities():
    la = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    lv = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    y = torch.tensor([0, 1])
    ce = torch.nn.functional.cross_entropy
    assert LabelLoss()(la, lv, y).item() == pytest.approx(0.5 * (ce(la, y) + ce(lv, y)).item())


def test_pair_distance_is_mean_squared_distance_of_pairs():
    za, zv = unit(0.0, 0.0), unit(0.0, math.pi)
    assert PairDistance()(za, zv).item() == pytest.approx((0.0 + 4.0) / 2)


def test_infonce_by_hand():
    za, zv = unit(0.0, 1.0), unit(0.1, 1.5)
    t = 0.5
    logits = (za @ zv.T) / t
    a2v = -torch.log_softmax(logits, dim=1).diagonal().mean()
    v2a = -torch.log_softmax(logits.T, dim=1).diagonal().mean()
    assert InfoNCE(t)(za, zv).item() == pytest.approx(((a2v + v2a) / 2).item())


def test_weighted_hinge_sum_equals_the_dense_triple_sum_with_gradients():
    from core.training.losses.soft_triplet import weighted_hinge_sum

    g = torch.Generator().manual_seed(0)
    d = torch.rand(5, 9, generator=g, dtype=torch.float64).requires_grad_()
    wp, wn = (
        torch.rand(5, 9, generator=g, dtype=torch.float64),
        torch.rand(5, 9, generator=g, dtype=torch.float64),
    )
    fast = weighted_hinge_sum(d, wp, wn, 0.3)
    (grad_fast,) = torch.autograd.grad(fast.sum(), d)
    hinge = torch.relu(d[:, :, None] - d[:, None, :] + 0.3)
    dense = (wp[:, :, None] * wn[:, None, :] * hinge).sum((1, 2))
    (grad_dense,) = torch.autograd.grad(dense.sum(), d)
    assert torch.allclose(fast, dense)
    assert torch.allclose(grad_fast, grad_dense)
