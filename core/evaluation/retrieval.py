"""Nearest-neighbour retrieval over embedding galleries: exact top-k and FAISS indexes.

Similarity is cosine. Every entry point L2-normalises its inputs (pass ``normalize=False`` when they
already are, to save a copy). Results are NumPy arrays: scores ``[Q, k]`` float32, best first, and
indices ``[Q, k]`` int64 into the gallery. Ties between equal scores are broken arbitrarily.

Which kind to use (measured in ``docs/benchmarks.md``, discussed in ``docs/scaling.md``):

- ``exact``: one torch matmul + top-k per chunk of queries. No build cost, exact, and the fastest
  choice for galleries up to ``EXACT_MAX_ITEMS``.
- ``flat``: FAISS ``IndexFlatIP``; exact too, lower memory traffic for large query batches.
- ``ivf``: FAISS ``IndexIVFFlat`` (spherical k-means coarse quantiser); approximate, seconds to
  build, sub-millisecond queries at 1M items.
- ``hnsw``: FAISS ``IndexHNSWFlat``; approximate, slowest to build, fastest single queries.
- ``auto``: ``exact`` up to ``EXACT_MAX_ITEMS`` items, ``ivf`` above.

FAISS is imported lazily, through ``core.evaluation.faiss_runtime.import_faiss`` (re-exported here),
which sets its OpenMP wait policy (why: that module's docstring).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch

from core.evaluation.faiss_runtime import import_faiss

Kind = Literal["auto", "exact", "flat", "ivf", "hnsw"]
KINDS: tuple[str, ...] = ("auto", "exact", "flat", "ivf", "hnsw")

# Largest gallery that "auto" searches exactly. Measured on 2 EPYC cores (docs/benchmarks.md): a
# single exact query costs ~0.3-0.7 ms at 10k items, ~6-15 ms at 100k and ~60-140 ms at 1M
# (memory-bound, linear in N; the higher figures on a loaded machine); an IVF index answers in
# about a millisecond but costs seconds to build (2.5 s at 100k, 25 s at 1M). Up to 200k items an
# exact query stays interactive and needs no build, so "auto" stays exact there.
EXACT_MAX_ITEMS = 200_000

# FAISS searches of fewer queries than this run on one OpenMP thread. Waking a second thread costs
# more than a small search on a busy machine: on 2 shared cores a single flat query over 10k items
# took 0.24 ms on one thread and 18 ms (p50) on two, whose barrier waits for a descheduled thread.
SMALL_BATCH = 16

# FAISS's flat search computes similarities with BLAS for batches of at least this many queries.
# (FAISS compares queries x dimension with faiss.cvar.distance_compute_blas_threshold, 128,000 by
# default in faiss-cpu 1.15: BLAS only from 1,000 queries of 128-d.) Measured on 100k items
# (docs/benchmarks.md): BLAS is 1.3x faster at 4 queries and 3-7x at 16-64, but 3x slower for one
# query, whose SIMD scan is memory-bound.
BLAS_MIN_QUERIES = 4

# Memory budget of one chunk of exact similarities (queries x gallery float32).
_CHUNK_BYTES = 256 * 2**20


def as_unit_rows(x: np.ndarray | torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """A contiguous float32 CPU tensor of the rows of ``x``, L2-normalised unless told not to."""
    t = torch.as_tensor(x).detach().to("cpu", torch.float32)
    if t.ndim != 2:
        raise ValueError(f"expected a 2-D array [N, D], got shape {tuple(t.shape)}")
    if normalize:
        t = torch.nn.functional.normalize(t, dim=1)
    return t.contiguous()


def _default_chunk(n_gallery: int) -> int:
    return max(1, _CHUNK_BYTES // (4 * max(1, n_gallery)))


def topk(
    queries: np.ndarray | torch.Tensor,
    gallery: np.ndarray | torch.Tensor,
    k: int,
    *,
    chunk: int | None = None,
    normalize: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine top-k of every query over the gallery.

    ``chunk`` is the number of queries per matmul (default: as many as fit in 256 MB of
    similarities). ``k`` larger than the gallery returns the whole gallery, ranked.
    """
    q = as_unit_rows(queries, normalize)
    g = as_unit_rows(gallery, normalize)
    return _exact_search(q, g, k, chunk)


def _exact_search(
    q: torch.Tensor, g: torch.Tensor, k: int, chunk: int | None
) -> tuple[np.ndarray, np.ndarray]:
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"queries have dimension {q.shape[1]}, gallery {g.shape[1]}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(k, len(g))
    chunk = chunk or _default_chunk(len(g))
    scores = np.empty((len(q), k), dtype=np.float32)
    indices = np.empty((len(q), k), dtype=np.int64)
    if k == 0:
        return scores, indices
    with torch.inference_mode():
        for start in range(0, len(q), chunk):
            s, i = torch.topk(q[start : start + chunk] @ g.T, k, dim=1)
            scores[start : start + chunk] = s.numpy()
            indices[start : start + chunk] = i.numpy()
    return scores, indices


def class_hits(
    indices: np.ndarray, gallery_labels: np.ndarray, query_labels: np.ndarray
) -> np.ndarray:
    """``[Q, k]`` bool: True where the retrieved item shares the query's class.

    Negative indices (FAISS's "no result") count as misses.
    """
    indices = np.asarray(indices)
    gl = np.asarray(gallery_labels)
    ql = np.asarray(query_labels)
    if len(ql) != len(indices):
        raise ValueError(f"{len(indices)} rows of indices but {len(ql)} query labels")
    valid = indices >= 0
    return valid & (gl[np.where(valid, indices, 0)] == ql[:, None])


def index_recall(found: np.ndarray, truth: np.ndarray) -> float:
    """How well an approximate index finds the exact neighbours: the mean fraction of each row of
    ``truth`` (exact top-k indices) present in ``found`` (the index's top-k). Not a retrieval
    metric of the embeddings (those live in core.evaluation.metrics)."""
    found, truth = np.asarray(found), np.asarray(truth)
    k = truth.shape[1]
    hits = sum(len(np.intersect1d(f[:k], t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size if truth.size else float("nan")


class GalleryIndex:
    """A searchable gallery of embeddings; ``search(queries, k)`` returns (scores, indices).

    ``kind`` picks the method (module docstring). Tuning knobs, all optional:
    ``nlist`` (IVF lists, default ~sqrt(N)), ``nprobe`` (IVF lists visited, default ~nlist/16,
    at least 8), ``hnsw_m`` (graph degree, 32), ``ef_construction`` (80), ``ef_search`` (64),
    ``threads`` (FAISS OpenMP threads; 0: one thread for batches under ``SMALL_BATCH`` queries,
    FAISS's default above), ``exact_max`` (the ``auto`` cut-off).
    """

    def __init__(
        self,
        gallery: np.ndarray | torch.Tensor,
        kind: Kind = "auto",
        *,
        normalize: bool = True,
        nlist: int | None = None,
        nprobe: int | None = None,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 64,
        threads: int = 0,
        exact_max: int = EXACT_MAX_ITEMS,
        seed: int = 0,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
        self._g = as_unit_rows(gallery, normalize)
        n, d = self._g.shape
        if kind == "auto":
            kind = "exact" if n <= exact_max else "ivf"
        self.kind: str = kind
        self.dim = d
        self._normalize = normalize
        self._index: Any = None
        if kind == "exact":
            return
        faiss = import_faiss()
        if threads:
            faiss.omp_set_num_threads(threads)
        x = self._g.numpy()
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif kind == "ivf":
            nlist = nlist or max(1, min(round(math.sqrt(n)), n // 39))
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.spherical = True
            index.cp.seed = seed
            index.cp.max_points_per_centroid = 64  # train k-means on <= 64 * nlist points
            index.train(x)
            index.nprobe = min(nlist, nprobe or max(8, nlist // 16))
            self._quantizer = quantizer  # the IVF index does not own it
        else:  # hnsw
            index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction
            index.hnsw.efSearch = ef_search
        index.add(x)
        self._index = index
        self._hnsw_m = hnsw_m
        self._threads = threads
        self._g = None  # FAISS keeps its own copy of the vectors

    def __len__(self) -> int:
        return int(self._index.ntotal) if self._index is not None else len(self._g)

    @property
    def ntotal(self) -> int:
        return len(self)

    def set_search_params(self, *, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Trade speed for recall after building: IVF ``nprobe``, HNSW ``ef_search``."""
        if nprobe is not None and self.kind == "ivf":
            self._index.nprobe = nprobe
        if ef_search is not None and self.kind == "hnsw":
            self._index.hnsw.efSearch = ef_search

    def search(
        self, queries: np.ndarray | torch.Tensor, k: int, *, chunk: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k gallery items for each query: (scores [Q, k] float32, indices [Q, k] int64).

        Approximate kinds may return fewer than k hits for a query; the rest have index -1 and
        score -inf.
        """
        q = as_unit_rows(queries, self._normalize)
        if len(q) and q.shape[1] != self.dim:
            raise ValueError(f"queries have dimension {q.shape[1]}, index {self.dim}")
        if self._index is None:
            return _exact_search(q, self._g, k, chunk)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        k = min(k, len(self))
        scores, indices = self._faiss_search(q.numpy(), k)
        scores = scores.astype(np.float32, copy=False)
        scores[indices < 0] = -np.inf
        return scores, indices.astype(np.int64, copy=False)

    def _faiss_search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        faiss = import_faiss()
        # A process-wide setting: a search in another thread may see ours, which is only slower.
        faiss.cvar.distance_compute_blas_threshold = BLAS_MIN_QUERIES * self.dim
        if self._threads or len(q) >= SMALL_BATCH:
            return self._index.search(q, k)
        # omp_set_num_threads sets the calling thread's OpenMP setting only: other threads'
        # searches are unaffected.
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return self._index.search(q, k)
        finally:
            faiss.omp_set_num_threads(before)

    def memory_bytes(self) -> int:
        """Estimated bytes held by the index: the float32 vectors plus the search structure."""
        n, d = len(self), self.dim
        vectors = 4 * n * d
        if self.kind == "ivf":  # an int64 id per vector, plus the centroids
            return vectors + 8 * n + 4 * self._index.nlist * d
        if self.kind == "hnsw":  # 2M int32 neighbours per vector on level 0, ~10% above
            return vectors + int(4 * n * self._hnsw_m * 2 * 1.1)
        return vectors
