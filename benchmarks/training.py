"""Training: seconds per epoch at the VEGAS shape (psd vs triplet), threads, growth with N, peak
RSS, and where a psd step spends its time.

Every training measurement runs ``core.training.loop.train`` in a fresh subprocess (so that peak RSS
is that run's own ``ru_maxrss`` and thread settings do not leak), on data written once to a
temporary HDF5 file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import fmt_ratio, fmt_s, row, run_worker

SECTION = "Training"
ROOT = Path(__file__).resolve().parent.parent
VEGAS_TRAIN = 22_482  # VEGAS: 28,103 clips minus 5,621 test


# ---------------------------------------------------------------- worker (inside a subprocess)


def _worker(spec: dict) -> dict:
    from core.data.dataset import load_h5
    from core.training.config import method_config
    from core.training.events import EpochEnd, StepEnd
    from core.training.loop import TrainControl, train

    torch.set_num_threads(spec["threads"])
    data = load_h5(spec["data"])
    cfg = method_config(spec["method"]).replace(
        **{"optim.epochs": spec.get("epochs", 1), "threads": spec["threads"], "seed": 0}
        | spec.get("overrides", {})
    )
    control = TrainControl()
    max_steps = spec.get("max_steps")
    steps, step_times, epochs = 0, [], []
    last = None
    for event in train(cfg, data, control=control):
        now = time.perf_counter()
        if isinstance(event, StepEnd):
            if last is not None:
                step_times.append(now - last)
            steps += 1
            if max_steps and steps >= max_steps:
                control.stop()
        elif isinstance(event, EpochEnd):
            epochs.append(event.seconds)
        last = time.perf_counter()
    return {
        "epoch_seconds": epochs,
        "step_median": float(np.median(step_times)) if step_times else math.nan,
        "steps": steps,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _spawn(spec: dict) -> dict:
    return run_worker("benchmarks.training", spec)


# ---------------------------------------------------------------- data


def _vegas_file(tmp: Path, n_train: int) -> Path:
    from core.data.dataset import save_h5
    from core.data.synthetic import SHAPES, make_dataset

    spec = dataclasses.replace(SHAPES["vegas"], n_train=n_train, n_val=2_248, n_test=500)
    path = tmp / f"vegas_{n_train}.h5"
    save_h5(path, make_dataset(spec, seed=0))
    return path


def _random_file(tmp: Path, n_train: int, n_val: int = 500) -> Path:
    """Random features at the VEGAS dimensions: a step's cost does not depend on the values."""
    from core.data.dataset import AVDataset, Split, save_h5

    rng = np.random.default_rng(0)

    def split(n: int) -> Split:
        return Split(
            rng.standard_normal((n, 128), dtype=np.float32),
            rng.standard_normal((n, 1024), dtype=np.float32),
            rng.integers(0, 10, n),
        )

    data = AVDataset(split(n_train), split(n_val), split(200), tuple(f"c{i}" for i in range(10)))
    path = tmp / f"random_{n_train}.h5"
    save_h5(path, data)
    return path


# ---------------------------------------------------------------- the soft triplet, two ways


def dense_soft_triplet(za, zv, soft, anchors, margin=0.2):
    """l_soft as first written in core/training/losses/soft_triplet.py: every (anchor, p, n) term
    materialised as [u, n, n] tensors. Kept here to show what the sort + cumsum form bought."""
    if not anchors.any():
        return za.sum() * 0.0

    def direction(d, s):
        hinge = torch.relu(d[:, :, None] - d[:, None, :] + margin)
        weight = s[:, :, None] * (1.0 - s[:, None, :])
        weight = weight * (1.0 - torch.eye(d.shape[1], dtype=d.dtype))
        total = weight.sum()
        return (weight * hinge).sum() / total if total > 0 else d.sum() * 0.0

    return 0.5 * (
        direction(1.0 - za[anchors] @ zv.T, soft[anchors])
        + direction(1.0 - zv[anchors] @ za.T, soft.T[anchors])
    )


def _soft_triplet_rows(quick: bool) -> list[dict]:
    from core.training.losses import SoftCrossModalTriplet

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    n = 128
    q = torch.softmax(3 * torch.randn(n, 10, generator=g), 1)
    s = q @ q.T
    anchors = torch.rand(n, generator=g) < 0.5
    za0 = torch.nn.functional.normalize(torch.randn(n, 128, generator=g), dim=1)
    zv0 = torch.nn.functional.normalize(torch.randn(n, 128, generator=g), dim=1)
    current = SoftCrossModalTriplet(0.2)

    def step(fn):
        za, zv = za0.clone().requires_grad_(), zv0.clone().requires_grad_()
        loss = fn(za, zv, s, anchors)
        loss.backward()
        return loss.detach(), za.grad, zv.grad

    ref, new = step(dense_soft_triplet), step(current)
    diff = max(float((x - y).abs().max()) for x, y in zip(ref, new, strict=True))
    assert diff < 1e-5, f"l_soft differs from the dense form by {diff}"
    reps = 10 if quick else 40
    times = _interleaved(
        {"dense": lambda: step(dense_soft_triplet), "current": lambda: step(current)}, reps
    )
    return [
        row(
            SECTION,
            "l_soft forward + backward, batch 128, half unannotated: "
            "core/training/losses/soft_triplet.py (one merged row sort + cumsum)",
            fmt_s(times["current"]),
            f"the first, dense [u, n, n] form: {fmt_s(times['dense'])}",
            fmt_ratio(times["dense"], times["current"]),
            notes=f"loss and gradients equal within {diff:.1e}; 1 thread, median, interleaved",
        )
    ]


def _interleaved(fns: dict, reps: int) -> dict[str, float]:
    """Median seconds per call of each function, calls interleaved so that a burst of load on the
    shared machine hits every alternative alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: float(np.median(v)) for name, v in times.items()}


def all_pairs_semi_hard(d, same, margin):
    """The semi-hard miner as first written in core/training/losses/miners.py: every (anchor,
    positive) pair compared with every negative, [P, m] masks. Kept to show what sorting bought."""
    inf = torch.finfo(d.dtype).max
    anchor, pos = torch.nonzero(same, as_tuple=True)
    keep = (~same[anchor]).any(dim=1)
    anchor, pos = anchor[keep], pos[keep]
    d_ap = d[anchor, pos]
    d_neg = d[anchor]
    neg = ~same[anchor]
    window = neg & (d_neg > d_ap[:, None]) & (d_neg < d_ap[:, None] + margin)
    semi = torch.where(window, d_neg, inf).amin(dim=1)
    easiest = torch.where(neg, d_neg, -inf).amax(dim=1)
    return d_ap, torch.where(window.any(dim=1), semi, easiest)


def _miner_rows(quick: bool) -> list[dict]:
    from core.training.losses import CrossModalTriplet, semi_hard

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (128,), generator=g)
    za = torch.nn.functional.normalize(torch.randn(128, 128, generator=g), dim=1)
    zv = torch.nn.functional.normalize(torch.randn(128, 128, generator=g), dim=1)

    def step(miner):
        a, v = za.clone().requires_grad_(), zv.clone().requires_grad_()
        loss = CrossModalTriplet(0.2, miner)(a, v, labels)
        loss.backward()
        return loss.detach(), a.grad, v.grad

    diff = max(
        float((x - y).abs().max())
        for x, y in zip(step(all_pairs_semi_hard), step(semi_hard), strict=True)
    )
    assert diff < 1e-6, f"the semi-hard miners disagree by {diff}"
    times = _interleaved(
        {"all pairs": lambda: step(all_pairs_semi_hard), "sorted": lambda: step(semi_hard)},
        10 if quick else 40,
    )
    return [
        row(
            SECTION,
            "l_cross with semi-hard mining, forward + backward, batch 128, 10 classes: "
            "core/training/losses/miners.py (sorted negatives + binary search)",
            fmt_s(times["sorted"]),
            f"every positive against every negative ([P, m] masks): {fmt_s(times['all pairs'])}",
            fmt_ratio(times["all pairs"], times["sorted"]),
            notes=f"loss and gradients equal within {diff:.1e}; 1 thread, median, interleaved",
        )
    ]


def _row_sort_rows(quick: bool) -> list[dict]:
    """Why core/training/losses/rowsort.py sorts CPU rows with numpy."""
    from core.training.losses.rowsort import argsort_rows

    torch.set_num_threads(1)
    x = torch.rand(128, 256, generator=torch.Generator().manual_seed(0))
    times = _interleaved(
        {"torch": lambda: torch.argsort(x, dim=1), "numpy": lambda: argsort_rows(x)},
        20 if quick else 100,
    )
    return [
        row(
            SECTION,
            "argsort of each row, 128 x 256 float32: core.training.losses.rowsort (numpy)",
            fmt_s(times["numpy"]),
            f"torch.argsort(dim=1): {fmt_s(times['torch'])}",
            fmt_ratio(times["torch"], times["numpy"]),
            notes="the sort inside l_soft (both directions merged) and the semi-hard miner; "
            "1 thread, median, interleaved",
        )
    ]


def _profile_rows(data_file: Path) -> list[dict]:
    """Top ops by self CPU time over 30 psd steps at r = 0.3 (1 thread)."""
    from torch.profiler import ProfilerActivity, profile, schedule

    from core.data.dataset import load_h5
    from core.training.config import method_config
    from core.training.events import StepEnd
    from core.training.loop import TrainControl, train

    torch.set_num_threads(1)
    data = load_h5(data_file)
    control = TrainControl()
    cfg = method_config("psd").replace(
        **{"optim.epochs": 1, "threads": 1, "schedule.r_start": 0.3, "schedule.r_end": 0.3}
    )
    # Skip the run's set-up (input statistics, first steps): profile 30 steps in steady state.
    with profile(
        activities=[ProfilerActivity.CPU], schedule=schedule(wait=5, warmup=2, active=30)
    ) as prof:
        steps = 0
        for event in train(cfg, data, control=control):
            if isinstance(event, StepEnd):
                prof.step()
                steps += 1
                if steps >= 38:
                    control.stop()
    averages = sorted(
        (e for e in prof.key_averages() if not e.key.startswith("ProfilerStep")),
        key=lambda e: e.self_cpu_time_total,
        reverse=True,
    )
    total = sum(e.self_cpu_time_total for e in averages)
    top = ", ".join(f"{e.key} {100 * e.self_cpu_time_total / total:.0f}%" for e in averages[:8])
    return [row(SECTION, "psd step profile (torch.profiler, 30 steps, self CPU)", top)]


# ---------------------------------------------------------------- run


def _epoch_rows(vegas: Path, quick: bool, shape: str) -> tuple[list[dict], dict]:
    """psd vs triplet seconds per epoch with 2 and 1 torch threads, each the median of 3 epochs in
    one process (psd at r = 0.3 throughout: the end of its schedule and its costliest step, 70%
    unannotated; in a default run's first epoch r = 1 and l_soft has no anchors)."""
    at_r_end = {"schedule.r_start": 0.3, "schedule.r_end": 0.3}
    epochs = 1 if quick else 3
    thread_counts = (1,) if quick else (2, 1)
    results = {
        (m, t): _spawn(
            {"data": str(vegas), "method": m, "threads": t, "epochs": epochs}
            | ({"overrides": at_r_end} if m == "psd" else {})
        )
        for t in thread_counts
        for m in ("psd", "triplet")
    }
    rows = []
    full = not quick
    for t in thread_counts:
        psd = float(np.median(results["psd", t]["epoch_seconds"]))
        trip = float(np.median(results["triplet", t]["epoch_seconds"]))
        target = full  # both settings use the 2 cores (see the row names)
        spread = ", ".join(f"{x:.2f}" for x in results["psd", t]["epoch_seconds"])
        setting = (
            "2 torch threads"
            if t == 2
            else "1 torch thread (+ the EMA teacher's forward in a second thread, psd only)"
        )
        rows.append(
            row(
                SECTION,
                f"psd epoch at r = 0.3, {shape}, batch 128, {setting} "
                f"(median of {epochs}; incl. val MAP)",
                fmt_s(psd),
                f"triplet epoch: {fmt_s(trip)}",
                f"psd/triplet {psd / trip:.2f}x",
                results["psd", t]["maxrss_mb"],
                "psd < 3 s/epoch on 2 cores; psd/triplet < 1.5x" if target else "",
                (psd < 3, psd / trip < 1.5) if target else None,
                f"median step: psd {fmt_s(results['psd', t]['step_median'])}, "
                f"triplet {fmt_s(results['triplet', t]['step_median'])}; psd epochs (s): {spread}",
            )
        )
    if quick:
        return rows, results
    one, two = results["psd", 1]["step_median"], results["psd", 2]["step_median"]
    rows.append(
        row(
            SECTION,
            "psd step at r = 0.3, batch 128: 2 torch threads (median step)",
            fmt_s(two),
            f"1 thread: {fmt_s(one)}",
            f"{one / two:.2f}x speed-up",
            notes="small matmuls and many small ops: a second thread gives little",
        )
    )
    return rows, results


def run(quick: bool) -> list[dict]:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        n_main = 1_000 if quick else VEGAS_TRAIN
        vegas = _vegas_file(tmp, n_main)
        shape = "quick 1k-pair" if quick else "VEGAS shape, 22,482 pairs"
        epoch_rows, results = _epoch_rows(vegas, quick, shape)
        rows += epoch_rows
        threads = 1 if quick else 2
        rss = results["psd", threads]["maxrss_mb"]
        trip_rss = results["triplet", threads]["maxrss_mb"]
        rows.append(
            row(
                SECTION,
                f"peak RSS of a psd training process, {shape} (ru_maxrss)",
                f"{rss:.0f} MB",
                f"triplet: {trip_rss:.0f} MB",
                f"{rss / trip_rss:.2f}x",
                rss,
                "< 2 GB" if not quick else "",
                rss < 2048 if not quick else None,
                "whole process: python, torch, data, model, optimiser, teacher",
            )
        )
        rows += _soft_triplet_rows(quick)
        rows += _miner_rows(quick)
        rows += _row_sort_rows(quick)
        if quick:
            return rows
        rows += _growth_rows(tmp)
        rows += _profile_rows(vegas)
    return rows


def _growth_rows(tmp: Path) -> list[dict]:
    at_r_end = {"schedule.r_start": 0.3, "schedule.r_end": 0.3}
    sizes = [1_000, 3_000, 10_000, 30_000, 100_000]
    per_n = {}
    for n in sizes:
        path = _random_file(tmp, n)
        per_n[n] = _spawn({"data": str(path), "method": "psd", "threads": 1, "overrides": at_r_end})
        path.unlink()
    secs = np.array([per_n[n]["epoch_seconds"][0] for n in sizes])
    # epoch = fixed part (val MAP on 500, set-up) + per-pair part: fit both, and judge
    # linearity on the large sizes where the fixed part no longer dominates.
    per_pair, fixed = np.polyfit(sizes, secs, 1)
    big = [i for i, n in enumerate(sizes) if n >= 10_000]
    slope = float(np.polyfit(np.log(np.array(sizes)[big]), np.log(secs[big]), 1)[0])
    rows = []
    for n, s in zip(sizes, secs, strict=True):
        last = n == sizes[-1]
        rows.append(
            row(
                SECTION,
                f"psd epoch vs N: {n:,} pairs (random VEGAS-dim features, 500 val), 1 thread",
                fmt_s(s),
                f"{sizes[0]:,} pairs: {fmt_s(secs[0])}",
                f"{s / secs[0]:.3g}x for {n / sizes[0]:.3g}x pairs",
                per_n[n]["maxrss_mb"],
                "grows at most linearly in N" if last else "",
                (slope < 1.15) if last else None,
                f"{1000 * s / n:.3g} s per 1k pairs"
                + (
                    f"; fit: {fixed:.2f} s + {1000 * per_pair:.3g} s per 1k pairs; "
                    f"log-log slope over N >= 10k: {slope:.2f}"
                    if last
                    else ""
                ),
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", required=True)
    args = parser.parse_args()
    print(json.dumps(_worker(json.loads(args.worker))))


if __name__ == "__main__":
    main()
