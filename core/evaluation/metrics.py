"""Cross-modal retrieval metrics: the one home of every number that judges a ranking.

Protocol (docs/method.md, "Evaluation"): every audio embedding queries all visual embeddings
(A2V) and vice versa (V2A); similarity is cosine; a gallery item is *relevant* when it shares the
query's class; the *partner* of a query is the other modality of the same clip.

Per query, in one pass over the similarities (``direction_metrics``):

- ``ap``: average precision over the full ranking, ties as scikit-learn's
  ``average_precision_score`` (a block of tied scores is one threshold: each relevant item in it
  gets the precision at the block's end). The lineage's MAP is the mean of these.
- ``map_at_r`` and ``r_precision`` (Musgrave et al., "A Metric Learning Reality Check", 2020),
  with R the number of relevant gallery items.
- ``partner_rank``: 1 + the number of other gallery items scoring at least the partner's score.
- ``topk_counts``: how many of the top-k results fall in each class (for the class confusion).

Ranks and MAP@R resolve ties against the query: an item tied with a relevant one (or with the
partner) ranks before it. Top-k sets break a tie at the k-th place by gallery order. Queries with
no relevant item have no AP, MAP@R or R-precision (NaN), and are left out of the means.

How it runs: queries and gallery are grouped by class, so each query's relevant items are one
block of columns. Similarities are computed a chunk of queries at a time (bounded memory) and
turned into int32 *rank keys* (core/evaluation/ranking_kernels.py): an integer that orders and ties
like the float score, doubled, plus 1 for an irrelevant item. One SIMD value sort per row (numpy's,
in place, no argsort) then ranks the gallery with the relevant items first in each block of tied
scores, and one linear walk over the sorted row finds every relevant item's block, which gives
AP, MAP@R and R-precision without a search; the partner's rank is one binary search per row and
the top-k class counts one pass over the unsorted keys. The kernels are compiled by numba (on
the first call, then loaded from its on-disk cache) and release the GIL, so chunks run on a small
thread pool. For a paired test set up to ``SHARED_SIMS_BYTES`` of similarities, one matmul serves
both directions: V2A's keys are read from the columns of A2V's matrix as they are made.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from core.evaluation.scores import MapScores

__all__ = [
    "RECALL_KS",
    "CrossModalMetrics",
    "DirectionMetrics",
    "MapScores",
    "average_precisions",
    "cross_modal_map",
    "cross_modal_metrics",
    "direction_metrics",
    "l2_normalize",
    "mean_ap",
    "partner_ranks",
]

RECALL_KS = (1, 5, 10)  # the Recall@K reported by the CLI and the app
CONFUSION_K = 10  # results per query counted in the class confusion

# A split needs at least this many pairs, of at least two classes, for its MAP to say anything:
# one pair always finds its partner first, and when every pair shares a class every retrieval is
# right, so either scores a perfect 1.0 that measures nothing.
MIN_SCORED = 2


def scoring_problem(labels: np.ndarray) -> str | None:
    """Why the pairs of these class ids cannot be scored by MAP, or None when they can."""
    labels = np.asarray(labels)
    if len(labels) < MIN_SCORED:
        n = len(labels)
        return f"it has {n} pair{'s' if n != 1 else ''}; MAP needs at least {MIN_SCORED}"
    if len(np.unique(labels)) < 2:
        return (
            f"all its {len(labels)} pairs are of one class, so every retrieval is right and MAP "
            "would be 1.0 whatever the model; it needs pairs of at least two classes"
        )
    return None


# Similarities per chunk of queries: bounds memory (4 bytes of keys each per worker thread, 8 with
# top-k counts) whatever the number of queries.
_CHUNK_SIMS = 1 << 20

# Up to this many bytes of float32 similarities, cross_modal_metrics computes the whole A2V matrix
# in one matmul and reads V2A's rows as its columns, instead of a second matmul of the same
# products (the matmul is the largest single cost; the VEGAS test split needs 126 MB). Above it,
# each direction multiplies its own chunks and memory stays at the chunks' working arrays.
SHARED_SIMS_BYTES = 256 * 2**20


def l2_normalize(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float32)
    return torch.nn.functional.normalize(t, dim=1)


@dataclass(frozen=True)
class DirectionMetrics:
    """Per-query results of one retrieval direction, in the caller's query order."""

    labels: np.ndarray  # [Q] class of each query
    ap: np.ndarray  # [Q] float64, NaN where no gallery item is relevant
    map_at_r: np.ndarray  # [Q] float64, NaN likewise
    r_precision: np.ndarray  # [Q] float64, NaN likewise
    partner_rank: np.ndarray | None  # [Q] int64, 1 = first; None when partners were not given
    topk_counts: np.ndarray | None  # [Q, C] int32 results of each class among the top k
    k: int  # the k of topk_counts (at most the gallery size), 0 when not computed
    num_classes: int

    @property
    def scored(self) -> np.ndarray:
        """[Q] bool: the query has at least one relevant gallery item."""
        return ~np.isnan(self.ap)

    def mean_ap(self) -> float:
        return mean_ap(self.ap)

    def class_ap(self) -> np.ndarray:
        """[C] mean AP of the scored queries of each class; NaN for a class with none."""
        return _class_means(self.ap, self.labels, self.num_classes)

    def class_balanced_map(self) -> float:
        """Mean of ``class_ap`` over the classes that have scored queries."""
        return _nanmean(self.class_ap())

    def mean_map_at_r(self) -> float:
        return _nanmean(self.map_at_r)

    def mean_r_precision(self) -> float:
        return _nanmean(self.r_precision)

    def recall_at(self, k: int) -> float:
        """Share of queries whose partner ranks within the first ``k``."""
        ranks = self._ranks()
        return float((ranks <= k).mean()) if len(ranks) else math.nan

    def median_rank(self) -> float:
        ranks = self._ranks()
        return float(np.median(ranks)) if len(ranks) else math.nan

    def mean_reciprocal_rank(self) -> float:
        ranks = self._ranks()
        return float((1.0 / ranks).mean()) if len(ranks) else math.nan

    def confusion(self) -> np.ndarray:
        """[C, C] float: row i is the share of each class among the top-k results of the queries
        of class i (rows sum to 1; NaN rows for classes without queries)."""
        counts = self.confusion_counts()
        totals = counts.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(totals > 0, counts / np.maximum(totals, 1), np.nan)

    def confusion_counts(self) -> np.ndarray:
        """[C, C] int64: how many top-k results of the queries of class i have class j."""
        counts = self._topk()
        out = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        np.add.at(out, self.labels, counts)
        return out

    def queries_retrieving(self, query_class: int, result_class: int) -> np.ndarray:
        """Queries (indices) of ``query_class`` with at least one ``result_class`` item among
        their top-k results, those with the most such results first."""
        counts = self._topk()[:, result_class]
        rows = np.flatnonzero((self.labels == query_class) & (counts > 0))
        return rows[np.argsort(-counts[rows], kind="stable")]

    def lowest_ap(self, n: int) -> np.ndarray:
        """The ``n`` scored queries with the lowest AP, worst first."""
        scored = np.flatnonzero(self.scored)
        return scored[np.argsort(self.ap[scored], kind="stable")][:n]

    def worst_ranked(self, n: int) -> np.ndarray:
        """The ``n`` queries whose partner ranks lowest, worst first."""
        return np.argsort(-self._ranks(), kind="stable")[:n]

    def subset(self, rows: np.ndarray) -> DirectionMetrics:
        """The same metrics for the queries at ``rows`` only (each still ranked against the full
        gallery): the per-query arrays are picked, nothing is recomputed. Row j of the result is
        query ``rows[j]`` here."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        return replace(
            self,
            labels=self.labels[rows],
            ap=self.ap[rows],
            map_at_r=self.map_at_r[rows],
            r_precision=self.r_precision[rows],
            partner_rank=self.partner_rank[rows] if self.partner_rank is not None else None,
            topk_counts=self.topk_counts[rows] if self.topk_counts is not None else None,
        )

    def headline(self) -> list[tuple[str, float]]:
        """(name, value) of every summary number, in the order reports show them."""
        rows = [
            ("MAP", self.mean_ap()),
            ("class-balanced MAP", self.class_balanced_map()),
            ("MAP@R", self.mean_map_at_r()),
            ("R-precision", self.mean_r_precision()),
        ]
        if self.partner_rank is not None:
            rows += [(f"Recall@{k}", self.recall_at(k)) for k in RECALL_KS]
            rows += [("MRR", self.mean_reciprocal_rank()), ("median rank", self.median_rank())]
        return rows

    def _ranks(self) -> np.ndarray:
        if self.partner_rank is None:
            raise ValueError("partner ranks were not computed (pass partners=)")
        return self.partner_rank

    def _topk(self) -> np.ndarray:
        if self.topk_counts is None:
            raise ValueError("top-k class counts were not computed (pass k=)")
        return self.topk_counts


@dataclass(frozen=True)
class CrossModalMetrics:
    """Both directions of a paired test set: audio queries visual (A2V) and the reverse (V2A)."""

    a2v: DirectionMetrics
    v2a: DirectionMetrics

    @property
    def directions(self) -> dict[str, DirectionMetrics]:
        return {"a2v": self.a2v, "v2a": self.v2a}

    def subset(self, audio_rows: np.ndarray, visual_rows: np.ndarray) -> CrossModalMetrics:
        """A2V for the audio queries at ``audio_rows``, V2A for the visual ones at
        ``visual_rows`` (against the full galleries; see ``DirectionMetrics.subset``)."""
        return CrossModalMetrics(self.a2v.subset(audio_rows), self.v2a.subset(visual_rows))

    def map_scores(self) -> MapScores:
        """The lineage's MAP (mean AP over queries) with Recall@1 and the median partner rank."""
        m_a2v, m_v2a = self.a2v.mean_ap(), self.v2a.mean_ap()
        ranks = self.a2v.partner_rank is not None
        return MapScores(
            a2v=m_a2v,
            v2a=m_v2a,
            avg=(m_a2v + m_v2a) / 2,
            n=int(self.a2v.scored.sum()),
            recall_at_1=(
                {d: m.recall_at(1) for d, m in self.directions.items()} if ranks else None
            ),
            median_rank=(
                {d: m.median_rank() for d, m in self.directions.items()} if ranks else None
            ),
        )

    def summary(self, class_names: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
        """Every headline number, JSON-ready: NaN (undefined) becomes None."""
        names = list(class_names) if class_names is not None else None
        out: dict[str, Any] = {
            k: _json_number(v) for k, v in self.map_scores().as_dict(ranks=False).items()
        }
        dirs = self.directions

        def per_direction(f: Any) -> dict[str, Any]:
            return {d: f(m) for d, m in dirs.items()}

        def name(c: int) -> str:
            return names[c] if names is not None and c < len(names) else str(c)

        def classes(m: DirectionMetrics) -> dict[str, float | None]:
            aps = m.class_ap()  # every class with queries, null where none was scored
            return {name(c): _json_number(aps[c]) for c in np.unique(m.labels)}

        out["per_class"] = per_direction(classes)
        out["class_balanced_map"] = per_direction(lambda m: _json_number(m.class_balanced_map()))
        out["map_at_r"] = per_direction(lambda m: _json_number(m.mean_map_at_r()))
        out["r_precision"] = per_direction(lambda m: _json_number(m.mean_r_precision()))
        if self.a2v.partner_rank is not None:
            out["recall"] = per_direction(
                lambda m: {str(k): _json_number(m.recall_at(k)) for k in RECALL_KS}
            )
            out["median_rank"] = per_direction(lambda m: _json_number(m.median_rank()))
            out["mrr"] = per_direction(lambda m: _json_number(m.mean_reciprocal_rank()))
        return out


def direction_metrics(
    queries: np.ndarray | torch.Tensor,
    gallery: np.ndarray | torch.Tensor,
    query_labels: np.ndarray | torch.Tensor,
    gallery_labels: np.ndarray | torch.Tensor,
    *,
    partners: np.ndarray | None = None,
    k: int | None = CONFUSION_K,
    num_classes: int | None = None,
    chunk: int | None = None,
    threads: int | None = None,
) -> DirectionMetrics:
    """Every per-query metric of ``queries`` ranking ``gallery`` by cosine similarity.

    ``partners[i]`` is the gallery index of query i's true partner (omit to skip ranks);
    ``k`` the top-k of the class counts (None to skip); ``chunk`` queries per block (default:
    ~2M similarities); ``threads`` worker threads (default: torch's thread count).
    """
    plan = _Plan(queries, gallery, query_labels, gallery_labels, partners, k, num_classes, chunk)
    _run_jobs([(plan.run_chunk, chunk) for chunk in plan.chunks], threads)
    return plan.result()


def cross_modal_metrics(
    audio: np.ndarray | torch.Tensor,
    visual: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    *,
    k: int | None = CONFUSION_K,
    num_classes: int | None = None,
    chunk: int | None = None,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CrossModalMetrics:
    """A2V and V2A metrics of paired embeddings (row i of each is one clip) with shared labels;
    both directions run in one pool of ``threads`` workers.

    ``progress(done, total)`` is called after each chunk, from a worker thread; an exception it
    raises (a cancel) stops the work: chunks not started are skipped and the exception is raised.
    """
    n = len(audio)
    if len(visual) != n or len(labels) != n:
        raise ValueError(f"{n} audio rows, {len(visual)} visual rows and {len(labels)} labels")
    pairs = np.arange(n)
    plans = [
        _Plan(q, g, labels, labels, pairs, k, num_classes, chunk)
        for q, g in ((audio, visual), (visual, audio))
    ]
    if 4 * n * n <= SHARED_SIMS_BYTES:
        # Both plans order rows and columns by the same labels, so V2A's similarity rows are the
        # columns of A2V's matrix.
        with torch.no_grad():
            sims = (plans[0].q @ plans[0].g.T).numpy()
        plans[0].shared, plans[1].shared = sims, sims.T
        plans[1].scratch = plans[0].scratch
    _run_jobs([(p.run_chunk, chunk) for p in plans for chunk in p.chunks], threads, progress)
    return CrossModalMetrics(plans[0].result(), plans[1].result())


def cross_modal_map(
    audio: np.ndarray | torch.Tensor,
    visual: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    threads: int | None = None,
    max_queries: int | None = None,
    seed: int = 0,
) -> MapScores:
    """A2V, V2A and average MAP (with Recall@1 and median rank) of paired test embeddings.

    With more than ``max_queries`` pairs, the queries are a sample of ``max_queries`` pairs
    drawn with ``seed`` (the same every call, so epochs compare), each ranking the whole
    gallery: the cost of the full protocol grows with the square of the pairs, a sample's only
    linearly, and the MAP of a sample of 20,000 queries is within a few thousandths of the full
    one. ``MapScores.sampled_from`` then says how many pairs the split has.
    """
    n = len(audio)
    if max_queries is None or n <= max_queries:
        return cross_modal_metrics(audio, visual, labels, k=None, threads=threads).map_scores()
    rows = np.sort(np.random.default_rng(seed).choice(n, max_queries, replace=False))
    labels = np.asarray(labels)
    a2v, v2a = (
        direction_metrics(q[rows], g, labels[rows], labels, partners=rows, k=None, threads=threads)
        for q, g in ((audio, visual), (visual, audio))
    )
    return replace(CrossModalMetrics(a2v, v2a).map_scores(), sampled_from=n)


def average_precisions(
    queries: np.ndarray | torch.Tensor,
    gallery: np.ndarray | torch.Tensor,
    query_labels: np.ndarray | torch.Tensor,
    gallery_labels: np.ndarray | torch.Tensor,
    chunk: int | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """AP of every query over the full cosine ranking of the gallery; NaN where none is relevant."""
    return direction_metrics(
        queries, gallery, query_labels, gallery_labels, k=None, chunk=chunk, threads=threads
    ).ap


def mean_ap(ap: np.ndarray) -> float:
    return _nanmean(ap)


def partner_ranks(
    queries: np.ndarray | torch.Tensor,
    gallery: np.ndarray | torch.Tensor,
    partners: np.ndarray | None = None,
    chunk: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """[Q] rank of each query's partner (``partners[i]``, default i) alone, without the rest of
    ``direction_metrics`` (no sort: one comparison per similarity), with the same tie rule.
    ``progress(done, total)`` (queries done) is called after each chunk; an exception it raises
    (a cancel) ends the call."""
    q, g = l2_normalize(queries), l2_normalize(gallery)
    cols = torch.as_tensor(np.arange(len(q)) if partners is None else partners).long()
    step = chunk or max(1, _CHUNK_SIMS // max(len(g), 1))
    out = np.empty(len(q), dtype=np.int64)
    with torch.no_grad():
        for s in range(0, len(q), step):
            sims = q[s : s + step] @ g.T
            own = sims.gather(1, cols[s : s + step, None])
            out[s : s + step] = (sims >= own).sum(dim=1).numpy()
            if progress is not None:
                progress(min(s + step, len(q)), len(q))
    return out


# ----- the computation ----------------------------------------------------------------------------


class _Plan:
    """One direction prepared for chunked work: inputs sorted by class, outputs allocated."""

    def __init__(
        self,
        queries: Any,
        gallery: Any,
        query_labels: Any,
        gallery_labels: Any,
        partners: np.ndarray | None,
        k: int | None,
        num_classes: int | None,
        chunk: int | None,
    ) -> None:
        q = l2_normalize(queries)
        g = l2_normalize(gallery)
        if q.ndim != 2 or g.ndim != 2 or (len(q) and len(g) and q.shape[1] != g.shape[1]):
            raise ValueError(f"queries {tuple(q.shape)} and gallery {tuple(g.shape)} do not match")
        for name, x in (("queries", q), ("gallery", g)):
            bad = ~torch.isfinite(x).all(dim=1)
            if bool(bad.any()):
                raise ValueError(f"{name} row {int(bad.nonzero()[0])} is not finite")
        ql = np.asarray(torch.as_tensor(query_labels).long())
        gl = np.asarray(torch.as_tensor(gallery_labels).long())
        if len(ql) != len(q) or len(gl) != len(g):
            raise ValueError(
                f"{len(q)} queries with {len(ql)} labels, {len(g)} gallery items with {len(gl)}"
            )
        if (len(ql) and ql.min() < 0) or (len(gl) and gl.min() < 0):
            raise ValueError("labels must be >= 0")
        top = max(int(ql.max()) + 1 if len(ql) else 0, int(gl.max()) + 1 if len(gl) else 0)
        self.num_classes = max(num_classes or 0, top)
        self.labels = ql
        # Group both sides by class: a class's relevant items become one block of columns.
        self.q_order = np.argsort(ql, kind="stable")
        self.g_order = np.argsort(gl, kind="stable")
        self.q = q[torch.from_numpy(self.q_order)]
        self.g = g[torch.from_numpy(self.g_order)]
        self.ql = ql[self.q_order]
        self.g_labels = gl[self.g_order]
        classes = np.arange(self.num_classes)
        # Each query's relevant items: its class's block of gallery columns.
        self.rel_lo = np.searchsorted(self.g_labels, classes, "left")[self.ql]
        self.rel_hi = np.searchsorted(self.g_labels, classes, "right")[self.ql]
        self.shared: np.ndarray | None = None  # [Q, n] similarities computed by the caller
        self.scratch = _Scratch()
        self.partner_cols = None
        if partners is not None:
            partners = np.asarray(partners, dtype=np.int64)
            if partners.shape != (len(q),) or (
                len(partners) and (partners.min() < 0 or partners.max() >= len(g))
            ):
                raise ValueError("partners must give one gallery index per query")
            g_position = np.empty(len(g), dtype=np.int64)
            g_position[self.g_order] = np.arange(len(g))
            self.partner_cols = g_position[partners[self.q_order]]
        self.k = min(k, len(g)) if k else 0
        nq, n = len(q), len(g)
        self.ap = np.full(nq, np.nan)
        self.map_at_r = np.full(nq, np.nan)
        self.r_precision = np.full(nq, np.nan)
        self.rank = np.zeros(nq, dtype=np.int64) if partners is not None else None
        self.topk = np.zeros((nq, self.num_classes), dtype=np.int32) if self.k else None
        step = chunk or max(1, _CHUNK_SIMS // max(n, 1))
        self.chunks = [(s, min(s + step, nq)) for s in range(0, nq, step)] if n else []

    def similarity_bits(self, start: int, stop: int) -> tuple[np.ndarray, bool, int]:
        """The float32 similarities of a chunk of (class-sorted) queries, as their int32 bits:
        (array, transposed, first row), the query i of the chunk reading row ``first + i`` of
        the array, or its column when ``transposed``."""
        if self.shared is None:
            sims = self.scratch.get("sims", stop - start, len(self.g))
            with torch.no_grad():
                torch.mm(self.q[start:stop], self.g.T, out=torch.from_numpy(sims))
            return sims.view(np.int32), False, 0
        if self.shared.flags.c_contiguous:
            return self.shared.view(np.int32), False, start
        return self.shared.T.view(np.int32), True, start

    def run_chunk(self, start: int, stop: int) -> None:
        from core.evaluation import ranking_kernels as kernels  # numba: imported on first use

        bits, transposed, first = self.similarity_bits(start, stop)
        m, n = stop - start, len(self.g)
        # A chunk's own similarities are turned into keys in place; shared ones are only read.
        keys = bits if self.shared is None else self.scratch.get("keys", m, n).view(np.int32)
        if not kernels.fill_rank_keys(
            bits, transposed, first, self.rel_lo[start:stop], self.rel_hi[start:stop], keys
        ):
            raise ValueError("a cosine similarity is 2 or more in magnitude")
        own = keys[np.arange(m), self.partner_cols[start:stop]] if self.rank is not None else None
        if self.topk is not None:
            sorted_keys = self.scratch.get("sorted", m, n).view(np.int32)
            sorted_keys[:] = keys
            sorted_keys.sort(axis=1)  # the unsorted keys are counted below
        else:
            keys.sort(axis=1)
            sorted_keys = keys
        kernels.relevance_metrics(
            sorted_keys,
            self.rel_hi[start:stop] - self.rel_lo[start:stop],
            self.ap[start:stop],
            self.map_at_r[start:stop],
            self.r_precision[start:stop],
        )
        if own is not None:
            kernels.partner_ranks(sorted_keys, own, self.rank[start:stop])
        if self.topk is not None:
            kernels.topk_class_counts(
                keys, sorted_keys, self.k, self.g_labels, self.g_order, self.topk[start:stop]
            )

    def result(self) -> DirectionMetrics:
        back = np.empty_like(self.q_order)
        back[self.q_order] = np.arange(len(self.q_order))
        return DirectionMetrics(
            labels=self.labels,
            ap=self.ap[back],
            map_at_r=self.map_at_r[back],
            r_precision=self.r_precision[back],
            partner_rank=self.rank[back] if self.rank is not None else None,
            topk_counts=self.topk[back] if self.topk is not None else None,
            k=self.k,
            num_classes=self.num_classes,
        )


class _Scratch(threading.local):
    """Working arrays of a worker thread, reused from chunk to chunk (a fresh array per chunk
    pays for its page faults again each time)."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, rows: int, cols: int) -> np.ndarray:
        """A [rows, cols] float32 array, C-contiguous, with undefined contents."""
        have = self.arrays.get(name)
        if have is None or have.shape[1] != cols or len(have) < rows:
            have = self.arrays[name] = np.empty((rows, cols), dtype=np.float32)
        return have[:rows]


def _run_jobs(
    jobs: list[tuple[Any, tuple]],
    threads: int | None,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Call each ``fn(*args)`` of ``jobs`` on ``threads`` worker threads (numpy, torch and the
    numba kernels release the GIL in the long calls), reporting ``progress(done, total)`` after
    each."""
    lock = threading.Lock()
    failed = threading.Event()
    done = 0

    def call(job: tuple[Any, tuple]) -> None:
        nonlocal done
        if failed.is_set():
            return
        try:
            job[0](*job[1])
            if progress is not None:
                with lock:
                    done += 1
                    progress(done, len(jobs))
        except BaseException:
            failed.set()
            raise

    workers = min(threads or torch.get_num_threads(), len(jobs))
    if workers <= 1:
        for job in jobs:
            call(job)
        return
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(call, jobs))


def _class_means(values: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    ok = ~np.isnan(values)
    sums = np.bincount(labels[ok], weights=values[ok], minlength=num_classes)
    counts = np.bincount(labels[ok], minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _nanmean(values: np.ndarray) -> float:
    ok = values[~np.isnan(values)]
    return float(ok.mean()) if len(ok) else math.nan


def _json_number(x: Any) -> Any:
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    return x
