"""Cross-modal retrieval MAP, as the lineage reports it (docs/method.md, "Evaluation").

Every audio embedding queries all visual embeddings (A2V) and vice versa (V2A); similarity is
cosine; an item is relevant when it shares the query's class; AP runs over the full ranking.
Tied scores follow scikit-learn's ``average_precision_score``: a block of tied items counts as one
threshold, so precision is taken at the end of the block. Queries with no relevant item have no
defined AP and are left out of the mean (``n`` counts the queries that were scored).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from core.scores import MapScores


def l2_normalize(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float32)
    return torch.nn.functional.normalize(t, dim=1)


def average_precisions(
    queries: np.ndarray | torch.Tensor,
    gallery: np.ndarray | torch.Tensor,
    query_labels: np.ndarray | torch.Tensor,
    gallery_labels: np.ndarray | torch.Tensor,
    chunk: int | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """AP of every query over the full cosine ranking of the gallery; NaN where none is relevant.

    Runs over chunks of ``chunk`` queries (default: ~4M similarities per chunk) on ``threads``
    threads (default: torch's thread count); see ``_ap_rows`` for the method.
    """
    q = l2_normalize(queries)
    g = l2_normalize(gallery)
    ql = np.asarray(torch.as_tensor(query_labels).long())
    gl = np.asarray(torch.as_tensor(gallery_labels).long())
    n = len(g)
    out = np.empty(len(q), dtype=np.float64)
    if len(q) == 0:
        return out
    if n == 0:
        out[:] = np.nan
        return out
    chunk = chunk or max(1, (1 << 22) // n)
    starts = range(0, len(q), chunk)

    def run(start: int) -> None:
        stop = min(start + chunk, len(q))
        with torch.no_grad():
            sims = (q[start:stop] @ g.T).numpy()
        out[start:stop] = _ap_rows(sims, ql[start:stop], gl)

    workers = min(threads or torch.get_num_threads(), len(starts))
    if workers <= 1:
        for start in starts:
            run(start)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, starts))
    return out


def _ap_rows(sims: np.ndarray, query_labels: np.ndarray, gallery_labels: np.ndarray) -> np.ndarray:
    """AP of each row of ``sims`` [m, n] (relevant: same label), NaN where none is relevant.

    AP = mean over relevant items r of (#relevant scoring >= r) / (#items scoring >= r): counting
    ">=" is sklearn's tie rule. Both counts come from binary searches in sorted rows, so only a
    value sort (fast, SIMD) is needed, never an argsort.
    """
    m, n = sims.shape
    sorted_all = np.sort(sims, axis=1)
    out = np.full(m, np.nan)
    for c in np.unique(query_labels):
        rows = np.flatnonzero(query_labels == c)
        cols = np.flatnonzero(gallery_labels == c)
        n_rel = len(cols)
        if n_rel == 0:
            continue
        rel = np.sort(sims[np.ix_(rows, cols)], axis=1)  # [rows, n_rel] ascending
        # Relevant items scoring >= each one: count from the start of its tie block.
        block = np.ones(rel.shape, dtype=bool)
        block[:, 1:] = rel[:, 1:] != rel[:, :-1]
        block_start = np.maximum.accumulate(np.where(block, np.arange(n_rel), 0), axis=1)
        below = np.empty(rel.shape, dtype=np.int64)  # items scoring < each relevant one
        for j, row in enumerate(rows):
            below[j] = np.searchsorted(sorted_all[row], rel[j], side="left")
        out[rows] = ((n_rel - block_start) / (n - below)).mean(axis=1)
    return out


def mean_ap(ap: np.ndarray) -> float:
    scored = ap[~np.isnan(ap)]
    return float(scored.mean()) if len(scored) else float("nan")


def cross_modal_map(
    audio: np.ndarray | torch.Tensor,
    visual: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
) -> MapScores:
    """A2V, V2A and their average MAP for paired test embeddings with shared labels."""
    a2v = average_precisions(audio, visual, labels, labels)
    v2a = average_precisions(visual, audio, labels, labels)
    m_a2v, m_v2a = mean_ap(a2v), mean_ap(v2a)
    return MapScores(a2v=m_a2v, v2a=m_v2a, avg=(m_a2v + m_v2a) / 2, n=int((~np.isnan(a2v)).sum()))
