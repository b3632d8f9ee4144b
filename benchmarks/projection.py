"""Projection: the first UMAP of a session, and UMAP against other layouts at 5k and 50k points.

The first UMAP of an app session is measured as the app makes it, in a fresh process: the request
starts the app's UMAP process, which imports umap, loads numba's compiled kernels from the on-disk
cache (compiles them, with an empty cache: a first launch) and fits. The app's default (PCA start,
``core.exploration.projection.UMAP_EPOCHS`` epochs) is compared with umap-learn's own (spectral
start, 500 epochs at this size) through the same path. The first UMAP after opening a finished run
is measured with the UMAP process pre-started as the app does (``ProjectionProcess.prestart``) and
without, with the pre-start's own cost (the child's memory and CPU, the caller's wait).

Layouts are compared on paired points shaped like the app's map (audio and visual embeddings of
the same clips, projected together): time, and how much of the high-dimensional structure each
keeps: kNN preservation (share of each point's 15 cosine neighbours that stay among its 15
neighbours on the map), trustworthiness (scikit-learn, 5k only: it needs all pairwise
distances), class agreement (share of map neighbours of the same class) and pairs kept (share of
points whose partner is among its 15 map neighbours; in the embedding space itself the share is
given in the notes). Times are wall clock and, since the machine is shared, process CPU time.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable

import numpy as np

from benchmarks.common import embedding_like, fmt_ratio, fmt_s, fresh_python, peak_memory, row

SECTION = "Projection"
K = 15

_FIRST_LAYOUT = """
import json, time
import avexplorer.jobs.projection as job
import core.evaluation.metrics  # the app has torch loaded when it shows a map (a model, searches)
from benchmarks.projection import paired_points, umap_learn_default_project
x, _ = paired_points({n})
audio, visual = x[: {n} // 2], x[{n} // 2 :]
if {alternative}:
    job.project = umap_learn_default_project
process = job.ProjectionProcess()
child_cpu = lambda: process.call(time.process_time)  # the UMAP child's CPU time so far
out, child_before = [], 0.0
for _ in range(2):  # the session's first layout, then the same again, compiled
    t, c = time.perf_counter(), time.process_time()
    layout = process.layout(0, audio, visual, "umap", None)
    wall, parent = time.perf_counter() - t, time.process_time() - c
    assert layout.method == "umap" and layout.coords.shape == ({n}, 2)
    child = child_cpu()
    out += [wall, parent + child - child_before]
    child_before = child
process.close()
print(json.dumps(out))
"""


_OPENED_RUN = """
import json, time
import avexplorer.jobs.projection as job
import core.evaluation.metrics
from benchmarks.projection import paired_points
x, _ = paired_points({n})
audio, visual = x[: {n} // 2], x[{n} // 2 :]
process = job.ProjectionProcess()
out = {{}}
if {prestart}:  # as the app does once a finished run's embeddings are in and it is idle
    t = time.perf_counter()
    process.prestart()
    out["blocked"] = time.perf_counter() - t
    while process.pid() is None:
        time.sleep(0.01)
    process.call(int)  # queued behind the warm-up: returns once it is done
    out["warm"] = time.perf_counter() - t
    out["child_cpu"] = process.call(time.process_time)
    with open(f"/proc/{{process.pid()}}/status") as f:
        out["rss_mb"] = next(int(s.split()[1]) / 1024 for s in f if s.startswith("VmRSS"))
t = time.perf_counter()
layout = process.layout(0, audio, visual, "umap", None)
out["wait"] = time.perf_counter() - t
assert layout.coords.shape == ({n}, 2)
process.close()
print(json.dumps(out))
"""


def opened_run_rows(n: int = 5_000) -> list[dict]:
    """The first UMAP after opening a finished run: the UMAP process pre-started (idle, nice +10
    warm-up) against started by the request, both with a warm numba cache."""
    opened = [fresh_python(_OPENED_RUN.format(n=n, prestart=p)) for p in (True, False)]
    pre, cold = opened
    return [
        row(
            SECTION,
            f"first UMAP after opening a finished run, {n:,} points: the wait once asked for",
            f"UMAP process pre-started: {fmt_s(pre['wait'])}",
            f"started by the request: {fmt_s(cold['wait'])}",
            fmt_ratio(cold["wait"], pre["wait"]),
            notes=f"the pre-start's cost: a process of {pre['rss_mb']:.0f} MB RSS, "
            f"{fmt_s(pre['child_cpu'])} CPU (at nice +10) over {fmt_s(pre['warm'])}; the caller "
            f"(the GUI thread) is held {pre['blocked'] * 1000:.1f} ms",
        )
    ]


def umap_learn_default_project(*args: object) -> np.ndarray:
    """``core.exploration.projection.project`` with umap-learn's own start and epochs (spectral, 500
    below 10,000 points): the alternative the app's first UMAP is compared with, run in the app's
    UMAP process like the default (the child imports it by name)."""
    from functools import partial
    from unittest import mock

    import core.exploration.projection

    fit = partial(core.exploration.projection.umap_2d, start="spectral", n_epochs=None)
    with mock.patch.object(core.exploration.projection, "umap_2d", fit):
        return core.exploration.projection.project(*args)  # type: ignore[arg-type]


def _first_layout(n: int, alternative: bool, cache_dir: str) -> list[float]:
    """[first layout s, its CPU s, the same again s, its CPU s]: a fresh app process asks its
    UMAP process (``avexplorer.jobs.projection``, started on that request, as in the app) for the
    layout of ``n`` paired points; CPU counts the app process and its UMAP child."""
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = cache_dir
    return fresh_python(_FIRST_LAYOUT.format(n=n, alternative=alternative), env=env)


def first_umap_rows(n: int = 5_000) -> list[dict]:
    from core.exploration.projection import UMAP_EPOCHS

    with tempfile.TemporaryDirectory() as cache:
        cold = _first_layout(n, False, cache)
        default = _first_layout(n, False, cache)
        other = _first_layout(n, True, cache)

    def timing(r: list[float]) -> str:
        return f"{fmt_s(r[0])} (CPU {fmt_s(r[1])}; compiled: {fmt_s(r[2])}, CPU {fmt_s(r[3])})"

    ours = f"PCA start, {UMAP_EPOCHS} epochs"
    return [
        row(
            SECTION,
            f"first UMAP of a session, {n:,} points: second launch (warm numba cache)",
            f"{ours}: {timing(default)}",
            f"umap-learn's default (spectral start, 500 epochs): {timing(other)}",
            f"{fmt_ratio(other[0], default[0])} wall, {fmt_ratio(other[1], default[1])} CPU",
            target="< 10 s",
            met=default[0] < 10,
            notes="the app's path in a fresh process: View > Compute UMAP starts the UMAP process, "
            "which imports umap, loads the cached kernels, finds neighbours and fits; the app "
            "ranks matches; CPU = app + UMAP process; 'compiled' = the same request again",
        ),
        row(
            SECTION,
            f"first UMAP of a session, {n:,} points: first launch (empty numba cache)",
            f"{ours}: {timing(cold)}",
            notes="compiles umap's kernels once and writes them to the cache",
        ),
    ]


# ----- layouts compared -------------------------------------------------------------------------


def paired_points(n: int, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """[n, 128] unit rows: n/2 'audio' rows, then their 'visual' partners (the same clip: the
    audio row plus noise, renormalised), and [n] class labels."""
    a, labels = embedding_like(n // 2, seed=seed)
    rng = np.random.default_rng(seed + 1)
    v = a + 0.05 * rng.standard_normal(a.shape, dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return np.vstack([a, v]), np.concatenate([labels, labels])


def _layouts() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    from core.exploration.projection import UMAP_EPOCHS, tsne_2d, umap_2d

    return {
        f"UMAP, PCA start, {UMAP_EPOCHS} epochs (the app's default)": umap_2d,
        "UMAP, PCA start, 100 epochs": lambda x: umap_2d(x, n_epochs=100),
        "UMAP, umap-learn's default (spectral start; 500 epochs below 10k points, 200 above)": (
            lambda x: umap_2d(x, start="spectral", n_epochs=None)
        ),
        "openTSNE FFT t-SNE (PCA init)": tsne_2d,  # the map's t-SNE
    }


def quality(x: np.ndarray, y: np.ndarray, labels: np.ndarray, truth: np.ndarray) -> dict:
    """kNN preservation, class agreement and pairs kept on the map ``y`` (see module docstring);
    ``truth`` holds each row's exact cosine neighbours in ``x`` (itself first)."""
    from scipy.spatial import cKDTree

    n = len(x)
    _, near = cKDTree(y).query(y, K + 1)
    near = near[:, 1:]
    kept = np.mean([len(np.intersect1d(a, b)) for a, b in zip(near, truth[:, 1:], strict=True)])
    partner = (np.arange(n) + n // 2) % n
    out = {
        "knn": kept / K,
        "class": float((labels[near] == labels[:, None]).mean()),
        "pairs": float((near == partner[:, None]).any(axis=1).mean()),
    }
    if n <= 5_000:
        from sklearn.manifold import trustworthiness

        out["trust"] = float(trustworthiness(x, y, n_neighbors=K, metric="cosine"))
    return out


def layout_rows(sizes: tuple[int, ...]) -> list[dict]:
    from core.exploration.projection import cosine_knn, umap_2d

    umap_2d(paired_points(600)[0])  # load (or compile) the kernels before timing anything
    rows = []
    for n in sizes:
        x, labels = paired_points(n)
        truth, _ = cosine_knn(x, K + 1) if n <= 20_000 else _exact(x)
        partner = (np.arange(n) + n // 2) % n
        pairs_hd = float((truth[:, 1:] == partner[:, None]).any(axis=1).mean())
        results = {}
        for name, fn in _layouts().items():
            with peak_memory() as peak:
                t, c = time.perf_counter(), time.process_time()
                y = fn(x)
                wall, cpu = time.perf_counter() - t, time.process_time() - c
            results[name] = (wall, cpu, quality(x, np.asarray(y), labels, truth), peak.delta_mb)
        base_name = next(iter(results))
        base = results[base_name]
        base_time = f"the app's default: {fmt_s(base[0])} (CPU {fmt_s(base[1])})"
        for name, (wall, cpu, q, mb) in results.items():
            trust = f", trustworthiness {q['trust']:.3f}" if "trust" in q else ""
            figure = (
                f"{fmt_s(wall)} (CPU {fmt_s(cpu)}); kNN kept {q['knn']:.3f}{trust}, "
                f"class agreement {q['class']:.3f}, pairs kept {q['pairs']:.3f}"
            )
            is_base = name == base_name
            rows.append(
                row(
                    SECTION,
                    f"{name}, {n:,} points ({n // 2:,} pairs, 100 classes)",
                    figure,
                    "" if is_base else base_time,
                    "" if is_base else f"CPU {fmt_ratio(cpu, base[1])} of the default's",
                    mb,
                    notes=f"pairs kept in the 128-d space itself: {pairs_hd:.3f}; "
                    "peak = memory the layout added",
                )
            )
    return rows


def _exact(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from core.evaluation.retrieval import topk

    sims, idx = topk(x, x, K + 1)
    return idx, sims


def run(quick: bool) -> list[dict]:
    from core.exploration.projection import pca_2d

    rows = []
    for n in (5_000,) if quick else (5_000, 50_000):
        x, _ = embedding_like(n, seed=4)
        with peak_memory() as pca_peak:
            t = time.perf_counter()
            pca_2d(x)
            t_pca = time.perf_counter() - t
        rows.append(row(SECTION, f"PCA, {n:,} x 128", fmt_s(t_pca), peak_mb=pca_peak.delta_mb))
    if quick:
        return rows
    return first_umap_rows() + opened_run_rows() + rows + layout_rows((5_000, 50_000))
