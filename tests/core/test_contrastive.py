"""psd's contrastive term over every pair (loss.contrastive_weight): its value and gradient by hand
on a batch of three pairs, and weight 0 leaving the paper's psd exactly as it was."""

from __future__ import annotations

import math

import pytest
import torch

from core.training.auto import paper_settings
from core.training.config import LossConfig, ModelConfig, OptimConfig
from core.training.losses import InfoNCE
from core.training.model import AVEmbedder
from core.training.objective import Objective
from core.training.schedules import learning_rate, soft_weight
from core.training.teacher import make_teacher

# The paper's psd: the loss fields that default to "auto" at their paper values.
PAPER = {k.split(".")[1]: v for k, v in paper_settings().items() if k.startswith("loss.")}


def unit(*angles: float) -> torch.Tensor:
    a = torch.tensor(angles, dtype=torch.float64)
    return torch.stack([torch.cos(a), torch.sin(a)], dim=1)


ZA_ANGLES, ZV_ANGLES, TAU = (0.0, 1.0, 2.5), (0.2, 1.4, 2.0), 0.5


def by_hand(targets: list[list[float]]) -> tuple[float, list[list[float]]]:
    """Loss and d loss / d za for za, zv on the unit circle, written out term by term:
    L = 1/2 [ 1/n sum_i sum_j -t_ij log p_ij  +  1/n sum_j sum_i -u_ji log p'_ji ] with
    p_ij = exp(c_ij / tau) / sum_k exp(c_ik / tau) (audio i over the visuals), p'_ji the same
    over the audios for visual j, t the row-normalised targets and u the column-normalised ones.
    dL/dza_i = 1/(2 n tau) sum_j [(p_ij - t_ij) + (p'_ji - u_ji)] zv_j."""
    n = len(ZA_ANGLES)
    za = [(math.cos(a), math.sin(a)) for a in ZA_ANGLES]
    zv = [(math.cos(a), math.sin(a)) for a in ZV_ANGLES]
    c = [[za[i][0] * zv[j][0] + za[i][1] * zv[j][1] for j in range(n)] for i in range(n)]
    t = [[targets[i][j] / sum(targets[i]) for j in range(n)] for i in range(n)]
    col = [sum(targets[i][j] for i in range(n)) for j in range(n)]
    u = [[targets[i][j] / col[j] for i in range(n)] for j in range(n)]  # u[j][i]
    e = [[math.exp(c[i][j] / TAU) for j in range(n)] for i in range(n)]
    p = [[e[i][j] / sum(e[i]) for j in range(n)] for i in range(n)]  # audio i over the visuals
    # q[j][i]: visual j's softmax over the audios
    q = [[e[i][j] / sum(e[k][j] for k in range(n)) for i in range(n)] for j in range(n)]
    loss_a2v = sum(-t[i][j] * math.log(p[i][j]) for i in range(n) for j in range(n)) / n
    loss_v2a = sum(-u[j][i] * math.log(q[j][i]) for j in range(n) for i in range(n)) / n
    grad = [
        [
            sum(((p[i][j] - t[i][j]) + (q[j][i] - u[j][i])) * zv[j][d] for j in range(n))
            / (2 * n * TAU)
            for d in range(2)
        ]
        for i in range(n)
    ]
    return 0.5 * (loss_a2v + loss_v2a), grad


@pytest.mark.parametrize(
    "targets",
    [
        None,  # each clip's own partner: the identity
        [[1.0, 0.3, 0.0], [0.3, 1.0, 0.6], [0.0, 0.6, 1.0]],  # S with its diagonal set to 1
    ],
)
def test_contrastive_value_and_gradient_match_the_formulas(targets):
    za = unit(*ZA_ANGLES).requires_grad_()
    zv = unit(*ZV_ANGLES)
    t = None if targets is None else torch.tensor(targets, dtype=torch.float64)
    loss = InfoNCE(TAU)(za, zv, t)
    (grad,) = torch.autograd.grad(loss, za)
    want, want_grad = by_hand(targets or [[float(i == j) for j in range(3)] for i in range(3)])
    assert loss.item() == pytest.approx(want, rel=1e-12)
    assert grad.tolist() == [pytest.approx(g, rel=1e-10) for g in want_grad]


def _step(cfg: LossConfig, seed: int = 0):
    """One psd step on 6 pairs (4 labelled, 2 not) from a fixed model; the losses and the
    gradient of the total with respect to every weight."""
    torch.manual_seed(0)
    model = AVEmbedder(5, 7, 3, ModelConfig(hidden=8, dim=4, dropout=0.0))
    teacher = make_teacher("ema", model, 0.99)
    g = torch.Generator().manual_seed(0)
    audio = torch.randn(6, 5, generator=g)
    visual = torch.randn(6, 7, generator=g)
    labels = torch.tensor([0, 1, 2, 0, -1, -1])
    out = Objective(cfg, overlap_teacher=False)(
        model, teacher, audio, visual, labels, 0.5, torch.Generator().manual_seed(seed)
    )
    grads = torch.autograd.grad(out.total, list(model.parameters()))
    return out, grads


def test_weight_zero_is_the_papers_psd_exactly():
    paper, paper_grads = _step(LossConfig(**PAPER))
    zero, zero_grads = _step(LossConfig(contrastive_weight=0.0, contrastive_soft=1.0))
    assert "contrastive" not in paper.parts and "contrastive" not in zero.parts
    p = paper.parts
    labelled_share = 4 / 6
    formula = (
        p["lab"] + p["cross"] + soft_weight(-1.0, 0.5 * labelled_share) * p["soft"] + 0.1 * p["dis"]
    )
    assert paper.total.item() == formula.item()
    assert zero.total.item() == paper.total.item()
    assert all(torch.equal(a, b) for a, b in zip(paper_grads, zero_grads, strict=True))


@pytest.mark.parametrize("beta", [0.0, 0.4])
def test_the_term_adds_its_weight_times_infonce_over_all_pairs(beta):
    paper, paper_grads = _step(LossConfig(**PAPER))
    w = 0.7
    out, grads = _step(LossConfig(contrastive_weight=w, contrastive_soft=beta))
    # every pair of the batch, the unlabelled ones included; S (out.soft) weighs the class-mates
    soft = (beta * out.soft).fill_diagonal_(1.0) if beta else None
    expected = InfoNCE(0.07)(out.za, out.zv, soft)
    assert out.parts["contrastive"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert out.total.item() == pytest.approx(paper.total.item() + w * expected.item(), rel=1e-6)
    # and its gradient is the paper's plus w times the term's own
    term_grads = _term_grads(w, beta)
    for a, b, c in zip(grads, paper_grads, term_grads, strict=True):
        assert torch.allclose(a, b + c, atol=1e-6)


def _term_grads(w: float, beta: float):
    out, _ = _step(LossConfig(**PAPER))
    torch.manual_seed(0)
    model = AVEmbedder(5, 7, 3, ModelConfig(hidden=8, dim=4, dropout=0.0))
    g = torch.Generator().manual_seed(0)
    audio, visual = torch.randn(6, 5, generator=g), torch.randn(6, 7, generator=g)
    za, zv = model(audio, visual)
    soft = (beta * out.soft).fill_diagonal_(1.0) if beta else None
    params = list(model.parameters())
    grads = torch.autograd.grad(w * InfoNCE(0.07)(za, zv, soft), params, allow_unused=True)
    # the label head g takes no part in the term
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


def test_cosine_learning_rate_goes_from_lr_to_zero():
    cfg = OptimConfig(lr=0.01, lr_schedule="cosine")
    assert learning_rate(cfg, 0, 100) == 0.01
    assert learning_rate(cfg, 50, 100) == pytest.approx(0.005)
    assert learning_rate(cfg, 100, 100) == pytest.approx(0.0, abs=1e-15)
    assert learning_rate(OptimConfig(lr=0.01, lr_schedule="constant"), 77, 100) == 0.01


@pytest.mark.parametrize(
    "over",
    [{"optim.lr_schedule": "cosine"}, {"optim.grad_clip": 1e-3}, {"loss.contrastive_weight": 1.0}],
)
def test_each_recipe_field_changes_the_trained_weights(tiny_data, over):
    """Wired into the loop: the same seed with the field set trains other weights."""
    from core.training.config import method_config
    from core.training.events import RunFinished
    from core.training.loop import train

    base = method_config("psd").replace(
        recipe="paper",
        **{"optim.epochs": 2, "optim.batch_size": 32, "model.hidden": 16, "model.dim": 8},
    )

    def final(cfg):
        events = list(train(cfg, tiny_data))
        assert isinstance(events[-1], RunFinished)
        return events[-1].test.avg, events[-1].history[-1]["losses"]["total"]

    assert final(base) != final(base.replace(**over))
