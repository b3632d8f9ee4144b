import pytest
import torch

from core.training.config import ModelConfig
from core.training.model import AVEmbedder
from core.training.teacher import EmaTeacher, SelfTeacher, make_teacher


def student() -> AVEmbedder:
    torch.manual_seed(0)
    return AVEmbedder(6, 5, 3, ModelConfig(hidden=8, dim=4))


def test_ema_update_moves_teacher_by_one_minus_momentum():
    s = student()
    t = EmaTeacher(s, momentum=0.9)
    before = [p.clone() for p in t.model.parameters()]
    with torch.no_grad():
        for p in s.parameters():
            p.add_(1.0)
    t.update()
    for b, p in zip(before, t.model.parameters(), strict=True):
        assert torch.allclose(p, b + 0.1, atol=1e-6)


def test_teacher_is_frozen_and_separate_from_the_student():
    s = student()
    t = EmaTeacher(s, momentum=0.99)
    assert all(not p.requires_grad for p in t.model.parameters())
    assert all(
        a.data_ptr() != b.data_ptr()
        for a, b in zip(t.model.parameters(), s.parameters(), strict=True)
    )


def test_teacher_probabilities_are_distributions_and_deterministic():
    s = student().train()  # dropout on in the student must not reach the teacher's predictions
    t = EmaTeacher(s, momentum=0.99)
    a, v = torch.randn(4, 6), torch.randn(4, 5)
    qa, qv = t.probabilities(a, v, temperature=1.0)
    qa2, _ = t.probabilities(a, v, temperature=1.0)
    assert torch.allclose(qa.sum(1), torch.ones(4)) and torch.allclose(qv.sum(1), torch.ones(4))
    assert torch.equal(qa, qa2)


def test_self_teacher_uses_the_student_and_keeps_its_mode():
    s = student().train()
    qa, _ = SelfTeacher(s).probabilities(torch.randn(2, 6), torch.randn(2, 5), 2.0)
    assert s.training and qa.shape == (2, 3) and not qa.requires_grad


def test_unknown_teacher_and_bad_momentum_are_errors():
    with pytest.raises(ValueError, match="teacher"):
        make_teacher("mean", student(), 0.9)
    with pytest.raises(ValueError, match="momentum"):
        EmaTeacher(student(), 1.0)
