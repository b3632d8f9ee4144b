"""Projection: the first UMAP of a session, and UMAP against other layouts at 5k and 50k points.

The first UMAP in a process pays numba: measured in fresh child processes (a new app session)
for the previous code (umap-learn's own nearest-neighbour descent) and for ``core.projection``
with an empty and with a warm on-disk cache (a first and a second launch of the app).

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
from pathlib import Path

import numpy as np

from benchmarks.common import embedding_like, fmt_ratio, fmt_s, fresh_python, peak_memory, row

SECTION = "Projection"
ROOT = Path(__file__).resolve().parent.parent
K = 15

_FIRST_FIT = """
import json, sys, time
t0 = time.perf_counter(); c0 = time.process_time()
from benchmarks.common import embedding_like
x, _ = embedding_like({n}, seed=4)
if {before}:
    import umap
    reducer = umap.UMAP(n_components=2, metric="cosine", random_state=0, n_jobs=1)
    fit = lambda: reducer.fit_transform(x)
else:
    from core.projection import umap_2d
    fit = lambda: umap_2d(x)
t1 = time.perf_counter(); c1 = time.process_time()
fit()
t2 = time.perf_counter(); c2 = time.process_time()
fit()
t3 = time.perf_counter(); c3 = time.process_time()
print(json.dumps([t2 - t1, c2 - c1, t3 - t2, c3 - c2, t1 - t0]))
"""


def _first_fit(n: int, before: bool, cache_dir: str | None) -> list[float]:
    """[first fit s, its CPU s, second fit s, its CPU s, start-up s] in a fresh process."""
    env = dict(os.environ)
    env.pop("NUMBA_CACHE_DIR", None)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    code = _FIRST_FIT.format(n=n, before=before)
    return fresh_python(code, env=env)


def first_umap_rows(n: int = 5_000) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        before = _first_fit(n, True, None)
        cold = _first_fit(n, False, cache)
        warm = _first_fit(n, False, cache)

    def cpu(r: list[float]) -> str:
        return f"{fmt_s(r[0])} (CPU {fmt_s(r[1])}; compiled: {fmt_s(r[2])}, CPU {fmt_s(r[3])})"

    rows.append(
        row(
            SECTION,
            f"first UMAP of a session, {n:,} points: second launch (warm numba cache)",
            cpu(warm),
            f"before (umap-learn's neighbour descent, compiled every session): {cpu(before)}",
            f"{fmt_ratio(before[0], warm[0])} wall, {fmt_ratio(before[1], warm[1])} CPU",
            target="< 10 s",
            met=warm[0] < 10,
            notes="fresh process each; the second fit in the same process shows the compiled speed",
        )
    )
    rows.append(
        row(
            SECTION,
            f"first UMAP of a session, {n:,} points: first launch (empty numba cache)",
            cpu(cold),
            f"before: {fmt_s(before[0])} (CPU {fmt_s(before[1])})",
            f"{fmt_ratio(before[0], cold[0])} wall, {fmt_ratio(before[1], cold[1])} CPU",
            notes="compiles umap's kernels once and writes them to the cache",
        )
    )
    return rows


# ----- layouts compared -------------------------------------------------------------------------


def paired_points(n: int, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """[n, 128] unit rows: n/2 'audio' rows, then their 'visual' partners (the same clip: the
    audio row plus noise, renormalised), and [n] class labels."""
    a, labels = embedding_like(n // 2, seed=seed)
    rng = np.random.default_rng(seed + 1)
    v = a + 0.05 * rng.standard_normal(a.shape, dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return np.vstack([a, v]), np.concatenate([labels, labels])


def _layouts(n: int) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    from core.projection import cosine_knn, import_umap, pca_2d, umap_2d

    def umap_before(x: np.ndarray) -> np.ndarray:
        umap = import_umap()
        return umap.UMAP(n_components=2, metric="cosine", random_state=0, n_jobs=1).fit_transform(x)

    def umap_pca_short(x: np.ndarray) -> np.ndarray:
        umap = import_umap()
        idx, dist = cosine_knn(x, K)
        init = pca_2d(x).astype(np.float64)
        init = (init - init.mean(axis=0)) / init.std(axis=0) * 5.0
        reducer = umap.UMAP(
            n_components=2,
            metric="cosine",
            init=init,
            n_epochs=100,
            random_state=0,
            n_jobs=1,
            precomputed_knn=(idx, dist, None),
        )
        return reducer.fit_transform(x)

    def tsne_fft(x: np.ndarray) -> np.ndarray:
        from openTSNE import TSNE

        return np.asarray(
            TSNE(metric="cosine", n_jobs=1, random_state=0, negative_gradient_method="fft").fit(x)
        )

    out = {
        "UMAP (core.projection: exact/HNSW neighbours, spectral init)": umap_2d,
        "UMAP before (umap-learn's neighbour descent)": umap_before,
        "UMAP, PCA init, 100 epochs": umap_pca_short,
    }
    try:
        import openTSNE  # noqa: F401

        out["openTSNE FFT t-SNE (PCA init)"] = tsne_fft
    except ImportError:
        pass
    return out


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
    from core.projection import cosine_knn, import_umap, umap_2d

    import_umap()
    # compile (or load) the kernels before timing anything; umap-learn's neighbour descent runs
    # from 4,096 points on
    umap_2d(paired_points(600)[0])
    _layouts(4_200)["UMAP before (umap-learn's neighbour descent)"](paired_points(4_200)[0])
    rows = []
    for n in sizes:
        x, labels = paired_points(n)
        truth, _ = cosine_knn(x, K + 1) if n <= 20_000 else _exact(x)
        partner = (np.arange(n) + n // 2) % n
        pairs_hd = float((truth[:, 1:] == partner[:, None]).any(axis=1).mean())
        results = {}
        for name, fn in _layouts(n).items():
            with peak_memory() as peak:
                t, c = time.perf_counter(), time.process_time()
                y = fn(x)
                wall, cpu = time.perf_counter() - t, time.process_time() - c
            results[name] = (wall, cpu, quality(x, np.asarray(y), labels, truth), peak.delta_mb)
        base_name = next(iter(results))
        base = results[base_name]
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
                    "" if is_base else f"{base_name.split(' (')[0]}: {fmt_s(base[0])}",
                    "" if is_base else f"time {fmt_ratio(wall, base[0])} of UMAP's",
                    mb,
                    notes=f"pairs kept in the 128-d space itself: {pairs_hd:.3f}; "
                    "peak = memory the layout added",
                )
            )
    return rows


def _exact(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from core.retrieval import topk

    sims, idx = topk(x, x, K + 1)
    return idx, sims


def run(quick: bool) -> list[dict]:
    from core.projection import pca_2d

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
    return first_umap_rows() + rows + layout_rows((5_000, 50_000))
