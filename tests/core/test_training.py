"""The training generator: events, determinism, pause/stop, exact resume, checkpoints."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from core.data.synthetic import SHAPES, make_dataset
from core.training.auto import resolve
from core.training.checkpoint import load_checkpoint
from core.training.config import method_config
from core.training.events import (
    AlignmentSnapshot,
    CheckpointSaved,
    EpochEnd,
    Paused,
    Resumed,
    RunFinished,
    RunStarted,
    StepEnd,
)
from core.training.loop import TrainControl, batch_slices, evaluate, train
from core.training.model import AVEmbedder
from core.training.objective import draw_annotated


def small(method="psd", epochs=3, **over):
    over = {
        "optim.epochs": epochs,
        "optim.batch_size": 32,
        "model.hidden": 32,
        "model.dim": 16,
        "threads": 1,
        "snapshot_every": 2,
    } | over
    return method_config(method).replace(**over)


def weights(path):
    return load_checkpoint(path).model


@pytest.mark.parametrize("method", ["psd", "triplet", "infonce"])
def test_each_method_trains_and_reports_its_losses(tiny_data, method):
    events = list(train(small(method), tiny_data))
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    steps = [e for e in events if isinstance(e, StepEnd)]
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert len(steps) == 3 * 3 and len(epochs) == 3
    expected = {
        "psd": {"total", "lab", "cross", "soft", "dis"},
        "triplet": {"total", "lab", "cross"},
        "infonce": {"total", "infonce"},
    }[method]
    assert set(steps[0].losses) == expected
    assert all(np.isfinite(v) for s in steps for v in s.losses.values())
    assert 0.0 <= epochs[-1].val.avg <= 1.0
    assert events[-1].test is not None and events[-1].test.n == len(tiny_data.test)


def test_psd_lowers_r_over_epochs_and_uses_the_soft_loss(tiny_data):
    events = list(train(small("psd", epochs=4), tiny_data))
    rs = [e.r for e in events if isinstance(e, EpochEnd)]
    assert rs == pytest.approx([1.0, 1 - 0.7 / 3, 1 - 1.4 / 3, 0.3])
    late = [e for e in events if isinstance(e, StepEnd) and e.epoch == 4]
    assert all(e.losses["soft"] > 0 for e in late)


@pytest.mark.parametrize("method", ["psd", "triplet", "infonce"])
def test_training_improves_retrieval_over_the_untrained_model(method):
    spec = replace(SHAPES["tiny"], n_train=192, label_noise=0.0, weak_pair_rate=0.0)
    data = make_dataset(spec, seed=1)
    cfg = small(method, epochs=6, **{"optim.lr": 3e-3})
    torch.manual_seed(cfg.seed)
    untrained = AVEmbedder(data.audio_dim, data.visual_dim, 4, cfg.model)
    before = evaluate(untrained, data.val, torch.device("cpu")).avg
    val = [e.val.avg for e in train(cfg, data) if isinstance(e, EpochEnd)]
    assert max(val) > before + 0.1


def test_alignment_snapshots_hold_the_batch_matrices(tiny_data):
    snaps = [
        e for e in train(small("psd", epochs=3), tiny_data) if isinstance(e, AlignmentSnapshot)
    ]
    assert [s.global_step for s in snaps] == [1, 3, 5, 7, 9]
    last = snaps[-1]
    n = len(last.labels)
    assert last.soft.shape == last.student.shape == (n, n)
    assert np.allclose(
        last.soft[np.ix_(last.annotated, last.annotated)],
        last.labels[last.annotated, None] == last.labels[None, last.annotated],
    )
    assert (last.soft >= 0).all() and (last.soft <= 1 + 1e-6).all()
    assert np.abs(last.student).max() <= 1 + 1e-5
    assert 0 < last.annotated.sum() < n  # r < 1 by then: some pairs got soft labels
    assert np.array_equal(tiny_data.train.labels[last.indices], last.labels)


def test_same_seed_same_run_on_cpu(tiny_data, tmp_path):
    for name in ("a", "b"):
        list(train(small(), tiny_data, out_dir=tmp_path / name))
    a, b = weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "b" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("teacher", ["ema", "self"])
def test_teacher_beside_the_student_gives_the_same_run(tiny_data, tmp_path, monkeypatch, teacher):
    """The EMA teacher's forward runs in a second thread on CPU (core/training/objective.py); the
    run must equal one where it runs in turn, bit for bit."""
    import functools

    import core.training.loop
    from core.training.objective import Objective

    cfg = small(**{"loss.teacher": teacher})
    list(train(cfg, tiny_data, out_dir=tmp_path / "beside"))
    monkeypatch.setattr(
        core.training.loop, "Objective", functools.partial(Objective, overlap_teacher=False)
    )
    list(train(cfg, tiny_data, out_dir=tmp_path / "in_turn"))
    a, b = weights(tmp_path / "beside" / "last.pt"), weights(tmp_path / "in_turn" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_stop_mid_epoch_then_resume_equals_an_uninterrupted_run(tiny_data, tmp_path):
    cfg = small(epochs=3)
    list(train(cfg, tiny_data, out_dir=tmp_path / "full"))

    control = TrainControl()
    events = []
    for ev in train(cfg, tiny_data, out_dir=tmp_path / "cut", control=control):
        events.append(ev)
        if isinstance(ev, StepEnd) and ev.global_step == 5:  # epoch 2, step 2 of 3
            control.stop()
    saved = [e for e in events if isinstance(e, CheckpointSaved) and e.kind == "interrupt"]
    assert saved and events[-1].stopped
    assert load_checkpoint(tmp_path / "cut" / "last.pt").step == 2

    resumed = list(
        train(cfg, tiny_data, out_dir=tmp_path / "cut", resume_from=tmp_path / "cut" / "last.pt")
    )
    assert resumed[0].start_epoch == 2 and resumed[0].start_step == 2
    a, b = weights(tmp_path / "full" / "last.pt"), weights(tmp_path / "cut" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    full_hist = [
        json.loads(x) for x in (tmp_path / "full" / "history.jsonl").read_text().splitlines()
    ]
    cut_hist = [
        json.loads(x) for x in (tmp_path / "cut" / "history.jsonl").read_text().splitlines()
    ]
    assert [h["val"] for h in cut_hist] == [h["val"] for h in full_hist]


def test_pause_blocks_between_steps_until_resumed(tiny_data):
    control = TrainControl()
    gen = train(small(epochs=1, snapshot_every=0), tiny_data, control=control)
    seen = []
    for ev in gen:
        seen.append(ev)
        if isinstance(ev, StepEnd) and ev.step == 1:
            control.pause()
            break
    assert isinstance(next(gen), Paused)
    timer = threading.Timer(0.2, control.resume)
    timer.start()
    after = next(gen)  # blocks until the timer resumes the run
    assert isinstance(after, Resumed) and after.step == 1
    rest = list(gen)
    assert isinstance(rest[-1], RunFinished) and not rest[-1].stopped


def test_stop_while_paused_ends_the_run(tiny_data):
    control = TrainControl()
    gen = train(small(epochs=2, snapshot_every=0), tiny_data, control=control)
    for ev in gen:
        if isinstance(ev, StepEnd):
            control.pause()
            break
    assert isinstance(next(gen), Paused)
    control.stop()
    rest = list(gen)
    assert isinstance(rest[-1], RunFinished) and rest[-1].stopped


def test_epoch_end_writes_history_last_and_best(tiny_data, tmp_path):
    events = list(train(small(epochs=2), tiny_data, out_dir=tmp_path))
    kinds = [e.kind for e in events if isinstance(e, CheckpointSaved)]
    assert kinds.count("last") == 2 and "best" in kinds
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    ckpt = load_checkpoint(tmp_path / "model.pt")
    assert ckpt.class_names == list(tiny_data.class_names)
    assert (ckpt.audio_dim, ckpt.visual_dim) == (tiny_data.audio_dim, tiny_data.visual_dim)
    # the config as run: its "auto" fields resolved (tests/core/test_auto.py)
    assert ckpt.config == resolve(small(epochs=2), tiny_data)[0]


def test_resume_refuses_a_different_method(tiny_data, tmp_path):
    from core.errors import UserError

    list(train(small(epochs=1), tiny_data, out_dir=tmp_path))
    with pytest.raises(UserError, match="config differs"):
        next(train(small("triplet", epochs=2), tiny_data, resume_from=tmp_path / "last.pt"))


def test_batches_cover_every_pair_and_never_leave_a_lonely_one():
    assert [s.stop - s.start for s in batch_slices(65, 32)] == [32, 33]
    assert [s.stop - s.start for s in batch_slices(66, 32)] == [32, 32, 2]


def test_annotated_subset_has_ceil_r_n_members():
    g = torch.Generator().manual_seed(0)
    assert draw_annotated(10, 0.3, g).sum() == 3
    assert draw_annotated(10, 0.31, g).sum() == 4
    assert draw_annotated(7, 1.0, g).all()


def test_inputs_are_standardised_with_train_statistics(tiny_data, tmp_path):
    list(train(small(epochs=1), tiny_data, out_dir=tmp_path))
    model = load_checkpoint(tmp_path / "last.pt").build_model()
    assert torch.allclose(model.audio_mean, torch.as_tensor(tiny_data.train.audio).mean(0))
    x = torch.as_tensor(tiny_data.train.visual)
    standardised = (x - model.visual_mean) / model.visual_std
    assert torch.allclose(standardised.std(0), torch.ones(x.shape[1]), atol=1e-4)


def test_control_flags_can_cross_processes():
    import multiprocessing

    control = TrainControl(multiprocessing.get_context("spawn").Event)
    control.pause()
    assert control.paused and not control.stopped
    control.stop()
    assert control.stopped and not control.paused  # a stop wakes a paused run


def test_test_score_comes_from_the_best_val_epoch_without_an_out_dir(tiny_data, tmp_path):
    cfg = small(epochs=4)
    in_memory = list(train(cfg, tiny_data))[-1]
    on_disk = list(train(cfg, tiny_data, out_dir=tmp_path))[-1]
    best = load_checkpoint(tmp_path / "model.pt").build_model()
    direct = evaluate(best, tiny_data.test, torch.device("cpu"))
    assert in_memory.test == on_disk.test == direct
