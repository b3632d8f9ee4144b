"""The batch sampler: the old shuffle when every pair is labelled, labelled-only batches for
triplet, a fixed labelled share for psd, and batches that are a pure function of the step."""

from __future__ import annotations

import math

import numpy as np
import torch

from core.training.batches import BatchSampler, batch_slices, epoch_order


def mask(n, labelled):
    m = np.zeros(n, dtype=bool)
    m[labelled] = True
    return m


def test_all_labelled_or_infonce_walks_each_epochs_shuffle_as_before():
    labelled = mask(100, np.arange(0, 100, 10))  # infonce ignores the labels
    for m, method in ((np.ones(100, bool), "psd"), (labelled, "infonce")):
        s = BatchSampler(m, method, batch_size=32, labelled_share=0.25, seed=3)
        assert s.mode == "all" and s.steps_per_epoch == len(batch_slices(100, 32))
        order = epoch_order(3, 2, 100)
        got = torch.cat([s.batch(2, k) for k in range(s.steps_per_epoch)])
        assert torch.equal(got, order)


def test_triplet_draws_only_labelled_pairs_and_runs_a_full_epoch_of_steps():
    labelled = mask(1000, np.arange(7, 1000, 20))  # 50 labelled pairs
    s = BatchSampler(labelled, "triplet", batch_size=32, labelled_share=0.25, seed=0)
    assert s.mode == "labelled" and s.steps_per_epoch == math.ceil(1000 / 32)
    seen = torch.cat([s.batch(e, k) for e in range(2) for k in range(s.steps_per_epoch)])
    assert labelled[seen.numpy()].all()
    # passes over the labelled pool (32 of the 50 pairs each): every pair about equally often
    counts = np.bincount(seen.numpy(), minlength=1000)[labelled]
    assert counts.min() > 0.5 * counts.mean()
    assert all(len(set(b.tolist())) == len(b) for b in [s.batch(0, k) for k in range(32)])


def test_psd_batches_hold_the_labelled_share_rest_unlabelled():
    labelled = mask(2000, np.arange(0, 2000, 20))  # 5 % labelled
    s = BatchSampler(labelled, "psd", batch_size=128, labelled_share=0.25, seed=0)
    assert s.mode == "mixed" and (s.k_lab, s.k_unl) == (32, 96)
    for k in range(s.steps_per_epoch):
        b = s.batch(0, k).numpy()
        assert len(b) == 128 and len(set(b)) == 128
        assert labelled[b].sum() == 32
    # a pool larger than the share keeps its natural share of each batch
    half = mask(2000, np.arange(0, 2000, 2))
    assert BatchSampler(half, "psd", 128, 0.25, 0).k_lab == 64


def test_batches_are_a_pure_function_of_seed_and_step():
    labelled = mask(500, np.arange(0, 500, 7))
    a = BatchSampler(labelled, "psd", 64, 0.25, seed=5)
    steps = [(e, k) for e in range(3) for k in range(a.steps_per_epoch)]
    first = {st: a.batch(*st) for st in steps}
    b = BatchSampler(labelled, "psd", 64, 0.25, seed=5)
    for st in reversed(steps):  # another order, as a resumed run would ask
        assert torch.equal(b.batch(*st), first[st])
    c = BatchSampler(labelled, "psd", 64, 0.25, seed=6)
    assert not torch.equal(c.batch(0, 0), first[(0, 0)])
