"""Cross-modal retrieval MAP, as the lineage reports it (docs/method.md, "Evaluation").

Every audio embedding queries all visual embeddings (A2V) and vice versa (V2A); similarity is
cosine; an item is relevant when it shares the query's class; AP runs over the full ranking.
Tied scores follow scikit-learn's ``average_precision_score``: a block of tied items counts as one
threshold, so precision is taken at the end of the block. Queries with no relevant item have no
defined AP and are left out of the mean (``n`` counts the queries that were scored).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class MapScores:
    a2v: float
    v2a: float
    avg: float
    n: int  # queries scored per direction (audio queries; visual queries are the same pairs)

    def as_dict(self) -> dict[str, float]:
        return {"a2v": self.a2v, "v2a": self.v2a, "avg": self.avg, "n": self.n}


def l2_normalize(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float32)
    return torch.nn.functional.normalize(t, dim=1)


def average_precisions(
    queries: np.ndarray | torch.Tensor,
    gallery: np.ndarray | torch.Tensor,
    query_labels: np.ndarray | torch.Tensor,
    gallery_labels: np.ndarray | torch.Tensor,
    chunk: int = 2048,
) -> np.ndarray:
    """AP of every query over the full cosine ranking of the gallery; NaN where none is relevant.

    Vectorised over queries; ``chunk`` bounds memory (chunk x gallery floats at a time).
    """
    q = l2_normalize(queries)
    g = l2_normalize(gallery)
    ql = torch.as_tensor(query_labels).long()
    gl = torch.as_tensor(gallery_labels).long()
    out = torch.empty(len(q), dtype=torch.float64)
    positions = torch.arange(1, len(g) + 1, dtype=torch.float32)
    for start in range(0, len(q), chunk):
        sims = q[start : start + chunk] @ g.T
        scores, order = torch.sort(sims, dim=1, descending=True, stable=True)
        rel = (gl[order] == ql[start : start + chunk, None]).float()
        hits = rel.cumsum(dim=1)
        # Precision at the end of each item's tie block: hits and rank at the block's last item.
        last_of_block = torch.ones_like(rel, dtype=torch.bool)
        last_of_block[:, :-1] = scores[:, :-1] != scores[:, 1:]
        block_end = torch.where(last_of_block, torch.arange(len(g)).expand_as(rel), len(g))
        block_end = block_end.flip(1).cummin(dim=1).values.flip(1)
        precision = hits.gather(1, block_end) / positions[block_end]
        n_rel = rel.sum(dim=1)
        ap = (precision * rel).sum(dim=1).double() / n_rel.double()
        out[start : start + chunk] = torch.where(n_rel > 0, ap, torch.nan)
    return out.numpy()


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
