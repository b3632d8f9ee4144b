"""Projection: PCA vs UMAP time for the app's embedding map, at 5k and 50k points.

UMAP's first call in a process pays numba's JIT compilation; it is measured separately (a first
fit on 1,000 points minus a second one).
"""

from __future__ import annotations

import time

from benchmarks.common import embedding_like, fmt_ratio, fmt_s, peak_memory, row

SECTION = "Projection"


def run(quick: bool) -> list[dict]:
    from core.projection import pca_2d, umap_2d

    rows = []
    umap_ok = not quick
    if umap_ok:
        warm, _ = embedding_like(1_000, seed=3)
        t = time.perf_counter()
        umap_2d(warm)
        first = time.perf_counter() - t
        t = time.perf_counter()
        umap_2d(warm)
        second = time.perf_counter() - t
        rows.append(
            row(
                SECTION,
                "UMAP first call in a process (numba compile), 1,000 points",
                fmt_s(first),
                f"second call, same points: {fmt_s(second)}",
                f"compile ~{fmt_s(first - second)}",
            )
        )
    for n in (5_000,) if quick else (5_000, 50_000):
        x, _ = embedding_like(n, seed=4)
        with peak_memory() as pca_peak:
            t = time.perf_counter()
            pca_2d(x)
            t_pca = time.perf_counter() - t
        if not umap_ok:
            rows.append(row(SECTION, f"PCA, {n:,} x 128", fmt_s(t_pca), peak_mb=pca_peak.delta_mb))
            continue
        with peak_memory() as umap_peak:
            t = time.perf_counter()
            umap_2d(x)
            t_umap = time.perf_counter() - t
        rows.append(
            row(
                SECTION,
                f"PCA, {n:,} x 128",
                fmt_s(t_pca),
                f"UMAP (compiled, cosine, 15 neighbours): {fmt_s(t_umap)}",
                f"UMAP/PCA {fmt_ratio(t_umap, t_pca)}",
                umap_peak.delta_mb,
                notes=f"peak = memory UMAP added; PCA added {pca_peak.delta_mb:.0f} MB",
            )
        )
    return rows
