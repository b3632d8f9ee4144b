"""Projection: PCA vs UMAP time for the app's embedding map, at 5k and 50k points.

UMAP's first call in a process pays numba's JIT compilation of the code paths it takes (from
about 4k points on, nearest-neighbour descent): measured as a first fit on 5,000 points minus a
second, identical one.
"""

from __future__ import annotations

import time

from benchmarks.common import embedding_like, fmt_ratio, fmt_s, peak_memory, row

SECTION = "Projection"


def run(quick: bool) -> list[dict]:
    from core.projection import pca_2d, umap_2d

    rows = []
    umap_times: dict[int, float] = {}
    for n in (5_000,) if quick else (5_000, 50_000):
        x, _ = embedding_like(n, seed=4)
        with peak_memory() as pca_peak:
            t = time.perf_counter()
            pca_2d(x)
            t_pca = time.perf_counter() - t
        if quick:
            rows.append(row(SECTION, f"PCA, {n:,} x 128", fmt_s(t_pca), peak_mb=pca_peak.delta_mb))
            continue
        if not umap_times:  # the process's first UMAP: compiles
            t = time.perf_counter()
            umap_2d(x)
            first = time.perf_counter() - t
        with peak_memory() as umap_peak:
            t = time.perf_counter()
            umap_2d(x)
            umap_times[n] = time.perf_counter() - t
        if n == 5_000:
            rows.append(
                row(
                    SECTION,
                    f"UMAP first call in a process (numba compile), {n:,} points",
                    fmt_s(first),
                    f"second call, same points: {fmt_s(umap_times[n])}",
                    f"compile ~{fmt_s(first - umap_times[n])}",
                    notes="the app pays this once per session, in its projection process",
                )
            )
        rows.append(
            row(
                SECTION,
                f"PCA, {n:,} x 128",
                fmt_s(t_pca),
                f"UMAP (compiled, cosine, 15 neighbours): {fmt_s(umap_times[n])}",
                f"UMAP/PCA {fmt_ratio(umap_times[n], t_pca)}",
                umap_peak.delta_mb,
                notes=f"peak = memory UMAP added; PCA added {pca_peak.delta_mb:.0f} MB",
            )
        )
    return rows
