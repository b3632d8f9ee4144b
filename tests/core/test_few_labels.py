"""Training with unlabelled pairs: which pairs each method sees, the teacher's pseudo-labels,
and exact resume with hidden labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import core.training.loop
from core.data.labels import hide_labels
from core.errors import UserError
from core.training.checkpoint import load_checkpoint
from core.training.events import EpochEnd, PseudoLabels, RunFinished, RunStarted, StepEnd
from core.training.loop import TrainControl, train
from core.training.teacher import EmaTeacher
from tests.core.test_training import small as small_run


def small(method="psd", epochs=3, **over):
    """test_training's small run, with three quarters of the train labels hidden."""
    return small_run(method, epochs, **{"snapshot_every": 0, "data.label_fraction": 0.25} | over)


def record_batches(monkeypatch):
    seen = []
    real = core.training.loop.BatchSampler.batch

    def spy(self, epoch, step):
        idx = real(self, epoch, step)
        seen.append(idx.clone())
        return idx

    monkeypatch.setattr(core.training.loop.BatchSampler, "batch", spy)
    return seen


def test_triplet_never_sees_an_unlabelled_pair(tiny_data, monkeypatch):
    seen = record_batches(monkeypatch)
    events = list(train(small("triplet"), tiny_data))
    hidden = hide_labels(tiny_data.train, 0.25, 0)
    assert seen and all((hidden.labels[idx.numpy()] >= 0).all() for idx in seen)
    assert events[0].n_labelled == int(hidden.labelled.sum()) < len(hidden)
    assert isinstance(events[-1], RunFinished) and events[-1].test is not None


def test_psd_teacher_labels_exactly_the_unlabelled_pairs(tiny_data, monkeypatch):
    """With r = 1 every labelled pair is in A, so the teacher is asked about U = the unlabelled
    pairs of each batch, no more and no fewer."""
    seen = record_batches(monkeypatch)
    asked = []
    real = EmaTeacher.probabilities

    def spy(self, audio, visual, temperature):
        asked.append(audio.clone())
        return real(self, audio, visual, temperature)

    monkeypatch.setattr(EmaTeacher, "probabilities", spy)
    cfg = small("psd", **{"schedule.r_end": 1.0})
    list(train(cfg, tiny_data))
    hidden = hide_labels(tiny_data.train, 0.25, 0)
    audio = torch.as_tensor(hidden.audio)
    step_calls = [a for a in asked if len(a) < len(hidden) - hidden.labelled.sum()]
    assert len(step_calls) == len(seen)
    for idx, got in zip(seen, step_calls, strict=True):
        unlabelled = idx[torch.as_tensor(hidden.labels)[idx] < 0]
        assert len(unlabelled) > 0 and torch.equal(got, audio[unlabelled])


def test_pseudo_labels_cover_the_unlabelled_pool_with_their_accuracy(tiny_data, tmp_path):
    events = list(train(small("psd"), tiny_data, out_dir=tmp_path))
    hidden = hide_labels(tiny_data.train, 0.25, 0)
    pseudo = [e for e in events if isinstance(e, PseudoLabels)]
    ends = [e for e in events if isinstance(e, EpochEnd)]
    assert len(pseudo) == len(ends) == 3
    p = pseudo[-1]
    assert p.source == "teacher"
    assert np.array_equal(p.indices, np.flatnonzero(hidden.labels < 0))
    assert np.array_equal(p.true_labels, tiny_data.train.labels[p.indices])
    assert ((p.confidence > 0) & (p.confidence <= 1)).all()
    assert p.accuracy == pytest.approx((p.predicted == p.true_labels).mean())
    assert ends[-1].pseudo_accuracy == p.accuracy
    history = [json.loads(x) for x in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert history[-1]["pseudo"]["accuracy"] == pytest.approx(p.accuracy)
    assert history[-1]["n_labelled"] == int(hidden.labelled.sum())
    assert load_checkpoint(tmp_path / "last.pt").config.data.label_fraction == 0.25


def test_infonce_trains_on_all_pairs_and_sends_no_pseudo_labels(tiny_data, monkeypatch):
    seen = record_batches(monkeypatch)
    events = list(train(small("infonce", epochs=1), tiny_data))
    assert sorted(torch.cat(seen).tolist()) == list(range(len(tiny_data.train)))
    assert not any(isinstance(e, PseudoLabels) for e in events)


def test_soft_start_keeps_l_soft_off_during_warm_up(tiny_data):
    cfg = small("psd", **{"loss.soft_start": 2})
    steps = [e for e in train(cfg, tiny_data) if isinstance(e, StepEnd)]
    assert all(s.losses["soft"] == 0 for s in steps if s.epoch <= 2)
    assert any(s.losses["soft"] > 0 for s in steps if s.epoch == 3)


def test_stop_mid_epoch_then_resume_equals_an_uninterrupted_run(tiny_data, tmp_path):
    cfg = small("psd", epochs=3, **{"loss.confidence": 0.3})
    list(train(cfg, tiny_data, out_dir=tmp_path / "full"))
    control = TrainControl()
    for ev in train(cfg, tiny_data, out_dir=tmp_path / "cut", control=control):
        if isinstance(ev, StepEnd) and ev.global_step == 5:
            control.stop()
    resumed = list(
        train(cfg, tiny_data, out_dir=tmp_path / "cut", resume_from=tmp_path / "cut" / "last.pt")
    )
    assert isinstance(resumed[0], RunStarted) and resumed[0].start_step > 0
    a = load_checkpoint(tmp_path / "full" / "last.pt").model
    b = load_checkpoint(tmp_path / "cut" / "last.pt").model
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_file_without_labelled_train_pairs_needs_infonce(tiny_data):
    from dataclasses import replace

    data = replace(tiny_data, train=replace(tiny_data.train, labels=tiny_data.train.labels * 0 - 1))
    with pytest.raises(UserError, match="psd needs labelled train pairs"):
        list(train(small("psd"), data))
    assert isinstance(list(train(small("infonce", epochs=1), data))[-1], RunFinished)


@pytest.mark.parametrize(
    "method, over",
    [("psd", {}), ("psd", {"loss.teacher": "self"}), ("triplet", {})],
)
def test_a_checkpoint_gives_back_the_pseudo_labels_its_run_sent(tiny_data, tmp_path, method, over):
    """What the app's Labels tab shows for a run reopened later: recomputed from its checkpoint,
    the same pseudo-labels the live run sent at that epoch's end."""
    from core.training.pseudo_labels import checkpoint_pseudo_labels

    events = list(train(small(method, epochs=2, **over), tiny_data, out_dir=tmp_path))
    sent = [e for e in events if isinstance(e, PseudoLabels)][-1]
    again = checkpoint_pseudo_labels(load_checkpoint(tmp_path / "last.pt"), tiny_data)
    assert again is not None and (again.epoch, again.source) == (sent.epoch, sent.source) == (
        2,
        "teacher" if method == "psd" else "student",
    )
    assert np.array_equal(again.indices, sent.indices)
    assert np.array_equal(again.predicted, sent.predicted)
    assert np.allclose(again.confidence, sent.confidence, atol=1e-6)
    assert again.accuracy == pytest.approx(sent.accuracy)


def test_infonce_checkpoint_says_why_it_has_no_pseudo_labels(tiny_data, tmp_path):
    from core.training.pseudo_labels import NoPseudoLabels, checkpoint_pseudo_labels

    list(train(small("infonce", epochs=1), tiny_data, out_dir=tmp_path))
    with pytest.raises(NoPseudoLabels, match="infonce trains no class head"):
        checkpoint_pseudo_labels(load_checkpoint(tmp_path / "last.pt"), tiny_data)
