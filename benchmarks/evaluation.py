"""Evaluation: cross-modal MAP (and every other metric) at the VEGAS test shape vs a
per-query loop over sklearn, sorting alone, the previous implementation, and the first call in a
new process (numba kernels compiled, or loaded from the on-disk cache)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from types import ModuleType

import numpy as np
import torch
from sklearn.metrics import average_precision_score

from benchmarks.common import ROOT, fmt_ratio, fmt_s, fresh_python, peak_memory, row, timeit
from core.evaluation.metrics import cross_modal_map, cross_modal_metrics, l2_normalize

SECTION = "Evaluation"

# The last commit whose core/metrics.py found each relevant item's rank by a binary
# search over the chunk's sorted rows (one np.searchsorted call per chunk) and computed the metrics
# with numpy.
PREVIOUS = "6bb53970a33b2b1dc36f58747970a8b7abff5f76"


def test_like_embeddings(n: int, classes: int = 10, d: int = 128, seed: int = 0):
    """Paired audio/visual test embeddings of a half-trained model: class structure plus noise,
    so that MAP is mid-range (~0.5) and rankings are not trivial."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    centres = rng.standard_normal((classes, d)).astype(np.float32)
    clip = centres[labels] + 2.5 * rng.standard_normal((n, d), dtype=np.float32)
    audio = clip + 0.8 * rng.standard_normal((n, d), dtype=np.float32)
    visual = clip + 0.8 * rng.standard_normal((n, d), dtype=np.float32)
    return audio, visual, labels


def sklearn_loop(queries, gallery, labels) -> np.ndarray:
    """The plain way: one ``average_precision_score`` call per query."""
    sims = (l2_normalize(queries) @ l2_normalize(gallery).T).numpy()
    out = np.empty(len(sims))
    for i in range(len(sims)):
        relevant = labels == labels[i]
        out[i] = average_precision_score(relevant, sims[i]) if relevant.any() else np.nan
    return out


def sorting_alone(audio, visual, repeat: int) -> np.ndarray:
    """Seconds of np.sort of both directions' similarity matrices (freed on return, so that they
    do not count in the peak memory of later rows)."""
    sims = (l2_normalize(audio) @ l2_normalize(visual).T).numpy()
    sims_t = np.ascontiguousarray(sims.T)
    return timeit(lambda: (np.sort(sims, axis=1), np.sort(sims_t, axis=1)), repeat=repeat)


def interleaved_medians(
    ours: Callable, theirs: Callable, args: tuple, threads: int, repeat: int
) -> tuple[float, float]:
    """Median seconds of ``ours(*args)`` and ``theirs(*args)`` called in turn (so that both see
    the same machine), each on ``threads`` threads and with torch on as many."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        times = [
            (
                timeit(lambda: ours(*args, threads=threads), 1, 0)[0],
                timeit(lambda: theirs(*args, threads=threads), 1, 0)[0],
            )
            for _ in range(repeat)
        ]
    finally:
        torch.set_num_threads(before)
    mine, old = np.median(np.array(times), axis=0)
    return float(mine), float(old)


def previous_metrics() -> ModuleType | None:
    """The metrics module as it was at ``PREVIOUS`` (read from git; then ``core/metrics.py``), or
    None outside a checkout."""
    try:
        source = subprocess.run(
            ["git", "show", f"{PREVIOUS}:core/metrics.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    # core/ was flat then; its one core import now lives in core.evaluation
    source = source.replace("from core.scores import", "from core.evaluation.scores import")
    module = ModuleType("previous_metrics")
    sys.modules[module.__name__] = module  # its dataclasses look their module up
    exec(compile(source, f"core/metrics.py@{PREVIOUS[:7]}", "exec"), module.__dict__)
    return module


FIRST_CALL = """
import json, time
t = time.perf_counter()
import numpy as np
from core.evaluation.metrics import cross_modal_metrics
imported = time.perf_counter() - t
rng = np.random.default_rng(0)
x, labels = rng.standard_normal((300, 16)).astype(np.float32), rng.integers(0, 5, 300)
t = time.perf_counter()
cross_modal_metrics(x, x, labels)
first = time.perf_counter() - t
t = time.perf_counter()
cross_modal_metrics(x, x, labels)
print(json.dumps({"import": imported, "first": first, "second": time.perf_counter() - t}))
"""


def first_calls() -> tuple[dict, dict]:
    """A first ``cross_modal_metrics`` call in a new process with an empty numba cache (the
    kernels compile) and in another one after it (they load from the cache)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        return fresh_python(FIRST_CALL, env=env), fresh_python(FIRST_CALL, env=env)


def run(quick: bool) -> list[dict]:
    n = 500 if quick else 5_621
    audio, visual, labels = test_like_embeddings(n)
    shape = f"{n:,} x {n:,}, both directions"
    repeat = 3 if quick else 5
    rows = []

    with peak_memory() as peak:
        times = timeit(lambda: cross_modal_map(audio, visual, labels), repeat=repeat)
    ours = float(np.median(times))
    scores = cross_modal_map(audio, visual, labels)

    t = time.perf_counter()
    ref_a2v = sklearn_loop(audio, visual, labels)
    ref_v2a = sklearn_loop(visual, audio, labels)
    t_sklearn = time.perf_counter() - t
    full = cross_modal_metrics(audio, visual, labels)
    diff = max(np.nanmax(np.abs(full.a2v.ap - ref_a2v)), np.nanmax(np.abs(full.v2a.ap - ref_v2a)))
    assert diff < 1e-6, f"MAP differs from sklearn by {diff}"

    threads = torch.get_num_threads()
    rows.append(
        row(
            SECTION,
            f"cross_modal_map {shape} (median of {len(times)}; MAP {scores.avg:.4f}; "
            f"with Recall@1 and median rank; {threads} threads)",
            fmt_s(ours),
            f"per-query sklearn average_precision_score loop: {fmt_s(t_sklearn)}",
            fmt_ratio(t_sklearn, ours),
            peak.mb,
            "< 1 s; >= 50x" if not quick else "",
            (ours < 1.0 and t_sklearn / ours >= 50) if not quick else None,
            f"per-query APs equal to sklearn's within {diff:.1e}; min/max of runs "
            f"{fmt_s(times.min())} / {fmt_s(times.max())}",
        )
    )
    if quick:
        return rows + first_call_rows()

    # One worker thread and one torch thread, like the sklearn loop: the ratio without
    # parallelism (and the one that holds best on a machine busy with other jobs).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = timeit(lambda: cross_modal_map(audio, visual, labels, threads=1), repeat=repeat)
    finally:
        torch.set_num_threads(before)
    t_one = float(np.median(one))
    rows.append(
        row(
            SECTION,
            f"cross_modal_map {shape}, 1 thread",
            fmt_s(t_one),
            f"per-query sklearn average_precision_score loop: {fmt_s(t_sklearn)}",
            fmt_ratio(t_sklearn, t_one),
            None,
            ">= 50x",
            t_sklearn / t_one >= 50,
        )
    )

    # What sorting alone costs: the similarity matrix of each direction sorted row by row.
    t_sort = float(np.median(sorting_alone(audio, visual, repeat)))
    rows.append(
        row(
            SECTION,
            f"cross_modal_map {shape}, vs sorting alone",
            fmt_s(ours),
            f"np.sort of both {n:,}^2 similarity matrices (no matmul, no AP): {fmt_s(t_sort)}",
            fmt_ratio(t_sort, ours),
            None,
            notes="the bound a sort-based AP cannot beat",
        )
    )

    previous = previous_metrics()
    if previous is not None:
        assert previous.cross_modal_map(audio, visual, labels) == scores
        for n_threads in (threads, 1):
            args = (audio, visual, labels)
            t_mine, t_old = interleaved_medians(
                cross_modal_map, previous.cross_modal_map, args, n_threads, repeat
            )
            rows.append(
                row(
                    SECTION,
                    f"cross_modal_map {shape}, vs the previous implementation, "
                    f"{n_threads} thread{'s' if n_threads > 1 else ''}",
                    fmt_s(t_mine),
                    f"core/metrics.py at {PREVIOUS[:7]} (sorted int keys, then one binary search "
                    f"per chunk for every relevant item's rank, metrics in numpy): {fmt_s(t_old)}",
                    fmt_ratio(t_old, t_mine),
                    None,
                    notes=f"interleaved, median of {repeat} each; equal scores",
                )
            )

    with peak_memory() as peak_full:
        full_times = timeit(lambda: cross_modal_metrics(audio, visual, labels), repeat=repeat)
    t_full = float(np.median(full_times))
    rows.append(
        row(
            SECTION,
            f"cross_modal_metrics {shape}: every metric (per-query AP, MAP@R, R-precision, "
            "partner rank, top-10 class counts)",
            fmt_s(t_full),
            f"cross_modal_map alone: {fmt_s(ours)}",
            f"{t_full / ours:.2f}x the time",
            peak_full.mb,
        )
    )
    return rows + first_call_rows()


def first_call_rows() -> list[dict]:
    compiled, cached = first_calls()
    small = "cross_modal_metrics of 300 pairs, first call in a new process"
    return [
        row(
            SECTION,
            f"{small}, numba kernels loaded from the on-disk cache",
            fmt_s(cached["first"]),
            f"with an empty cache (the kernels compile): {fmt_s(compiled['first'])}",
            fmt_ratio(compiled["first"], cached["first"]),
            notes=f"import core.evaluation.metrics: {fmt_s(cached['import'])} (numba loads on the "
            f"first call); second call: {fmt_s(cached['second'])}",
        )
    ]
