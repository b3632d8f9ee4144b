"""Which train pairs make up each step's batch (docs/method.md, "Batches when labels are scarce").

Every method runs ``steps_per_epoch`` steps per epoch, the number a pass over all train pairs in
batches of ``batch_size`` takes, so equal epochs are equal optimiser steps whatever the label rate.

- ``all`` (every pair labelled, or infonce): each epoch is one pass over the train pairs in a
  shuffle that is a pure function of (seed, epoch), as before unlabelled data existed.
- ``labelled`` (triplet when some pairs are unlabelled): batches come from the labelled pool only,
  as a stream of reshuffled passes over it; an unlabelled pair is never drawn.
- ``mixed`` (psd when some pairs are unlabelled): each batch holds ``k_l`` labelled pairs from a
  stream over the labelled pool and ``n - k_l`` unlabelled ones from a stream over the unlabelled
  pool, where ``k_l`` is the pool's natural share of the batch or ``labelled_share`` of it,
  whichever is larger. With 5 % labels a random batch of 128 would hold ~6 labelled pairs, too few
  for l_lab and l_cross; a share of 0.25 gives 32.

Each pool is walked in passes, each pass a permutation seeded by (seed, pool, pass) cut into
groups of k (M // k per pass, M the pool's size), so every batch is a pure function of (seed,
global step): a resumed run draws exactly the batches it would have drawn, with no sampler state
to save, and no batch holds a pair twice.

Shuffles stay near the file (``shuffled``): a split (or pool) of up to ``WINDOW_BLOCKS`` x
``BLOCK_ROWS`` pairs is shuffled whole; a larger one is cut into blocks of ``BLOCK_ROWS``
consecutive pairs, the blocks are shuffled, and each run of ``WINDOW_BLOCKS`` of them (a window)
is shuffled within. Consecutive batches then draw from one window, a few dozen contiguous runs of
the file, so a split streamed from disk (core/data/stream.py) is read in near-sequential runs; a
window of 64 random blocks still mixes the classes of a file written in class order. The order
is the same whether the features are in memory or on disk.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import numpy as np
import torch

BLOCK_ROWS = 512  # 2.4 MB of 128 + 1,024 float32 features: one contiguous read
WINDOW_BLOCKS = 64  # a window of 32,768 pairs (150 MB at those dims), shuffled whole


def shuffled(n: int, generator: torch.Generator) -> torch.Tensor:
    """A random order of ``range(n)``: one permutation up to a window's size, else shuffled
    blocks, each window of them shuffled within (see the module's docstring)."""
    window = BLOCK_ROWS * WINDOW_BLOCKS
    if n <= window:
        return torch.randperm(n, generator=generator)
    blocks = torch.randperm(math.ceil(n / BLOCK_ROWS), generator=generator)
    offsets = torch.arange(BLOCK_ROWS)
    parts = []
    for w in range(0, len(blocks), WINDOW_BLOCKS):
        rows = (blocks[w : w + WINDOW_BLOCKS, None] * BLOCK_ROWS + offsets).reshape(-1)
        rows = rows[rows < n]
        parts.append(rows[torch.randperm(len(rows), generator=generator)])
    return torch.cat(parts)


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The epoch's shuffle, a pure function of (seed, epoch) so a mid-epoch resume replays it."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return shuffled(n, g)


class _Recent:
    """The last two values of a pure function of one int, safe to share between the training
    thread and a reader thread that looks one group of steps ahead (across an epoch's end)."""

    def __init__(self, make: Callable[[int], torch.Tensor]):
        self._make, self._lock = make, threading.Lock()
        self._items: dict[int, torch.Tensor] = {}

    def __call__(self, key: int) -> torch.Tensor:
        with self._lock:
            if key not in self._items:
                if len(self._items) >= 2:
                    del self._items[max(self._items, key=lambda k: abs(k - key))]
                self._items[key] = self._make(key)
            return self._items[key]


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """Batches of ``batch_size``; a last batch of fewer than 2 pairs (no triplet) joins the
    one before."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] < 2:
        starts.pop()
    return [slice(s, starts[i + 1] if i + 1 < len(starts) else n) for i, s in enumerate(starts)]


class _Stream:
    """An endless sequence of reshuffled passes over ``pool`` (positions in the train split)."""

    def __init__(self, pool: np.ndarray, seed: int, tag: int):
        self.pool = torch.as_tensor(pool, dtype=torch.long)
        self.seed, self.tag = seed, tag
        self._order = _Recent(self._pass_order)

    def _pass_order(self, k: int) -> torch.Tensor:
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.tag) * 1_000_003 + k)
        return self.pool[shuffled(len(self.pool), g)]

    def take(self, g: int, k: int) -> torch.Tensor:
        """The g-th group of k items (k <= the pool's size). Each pass gives M // k groups; the
        M % k items left over differ from pass to pass, and no group holds a pair twice."""
        per_pass = len(self.pool) // k
        p, j = divmod(g, per_pass)
        return self._order(p)[j * k : (j + 1) * k]


class BatchSampler:
    """The batches of a run: ``batch(epoch, step)`` gives the positions in the train split."""

    def __init__(
        self,
        labelled: np.ndarray,
        method: str,
        batch_size: int,
        labelled_share: float,
        seed: int,
    ):
        labelled = np.asarray(labelled, dtype=bool)
        n_total, n_lab = len(labelled), int(labelled.sum())
        self.seed = seed
        self.slices = batch_slices(n_total, batch_size)
        self.steps_per_epoch = len(self.slices)
        self.n_total = n_total
        self._order = _Recent(lambda epoch: epoch_order(seed, epoch, n_total))
        if method == "infonce" or n_lab == n_total:
            self.mode = "all"
            return
        if n_lab < 1 or (method == "triplet" and n_lab < 2):
            raise ValueError(
                f"{method} needs labelled train pairs; this data has {n_lab} of {n_total} "
                "(infonce trains without labels)"
            )
        n = min(batch_size, n_total)
        self.labelled_pool = np.flatnonzero(labelled)
        if method == "triplet":
            self.mode = "labelled"
            self.k_lab, self.k_unl = min(n, n_lab), 0
        else:
            self.mode = "mixed"
            natural = round(n * n_lab / n_total)
            self.k_lab = min(n_lab, max(math.ceil(labelled_share * n), natural, 1))
            self.k_unl = min(n_total - n_lab, n - self.k_lab)
        self._lab = _Stream(self.labelled_pool, seed, 1)
        self._unl = _Stream(np.flatnonzero(~labelled), seed, 2)

    def batch(self, epoch: int, step: int) -> torch.Tensor:
        """Positions in the train split of the pairs in step ``step`` of epoch ``epoch``."""
        if self.mode == "all":
            return self._order(epoch)[self.slices[step]]
        g = epoch * self.steps_per_epoch + step
        parts = [self._lab.take(g, self.k_lab)]
        if self.k_unl:
            parts.append(self._unl.take(g, self.k_unl))
        return torch.cat(parts)
