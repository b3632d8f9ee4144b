"""Evaluation: every retrieval score and search, from embeddings (never from a model).

- ``metrics``: the one home of every metric (MAP per direction, MAP@R, R-precision, partner
  ranks, per-class AP, confusion); ``ranking_kernels``: its numba per-row walk.
- ``scores``: ``MapScores``, plain data that front ends import cheaply.
- ``retrieval``: top-k search and ``GalleryIndex`` (exact, or FAISS above a measured size);
  ``faiss_runtime``: FAISS loaded without torch.

May import only core's run-time helpers (``errors``, ``numba_cache``).
"""
