"""2-D projections of embeddings for the app's embedding map: PCA now, UMAP or t-SNE on request.

Pure functions on numpy arrays, no Qt. UMAP and openTSNE are imported only inside ``umap_2d`` and
``tsne_2d`` so that importing this module stays cheap.

UMAP or t-SNE: on paired embedding-like points (benchmarks/projection.py, docs/benchmarks.md)
openTSNE's FFT t-SNE keeps far more of each clip's audio-visual pairs and nearest neighbours on
the map than UMAP, at several times UMAP's cost. UMAP is the map's quick non-linear layout and
t-SNE the faithful one.

What a first UMAP costs, and why ``umap_2d`` is built as it is (figures in docs/benchmarks.md):
umap-learn's code is compiled by numba on first use in every process, most of it in pynndescent's
nearest-neighbour descent, whose functions take the distance function as an argument and so
cannot be cached on disk. ``umap_2d`` therefore finds the neighbours itself (exact cosine top-k
up to ``EXACT_KNN_MAX`` points, a HNSW graph above: both FAISS, a compiled library) and
hands them to UMAP, which then runs only its own kernels; those are cached on disk
(``core.numba_cache``), so a later session loads them instead of compiling them again.

Which UMAP: the map's UMAP starts from the PCA layout (``pca_2d``, milliseconds) and runs
``UMAP_EPOCHS`` = 200 epochs, where umap-learn by default starts from a spectral embedding of the
neighbour graph (an eigenproblem: about half the fit's time at 50k points) and runs 500 epochs
below 10,000 points. On paired embedding-like points (benchmarks/projection.py) that halves the
CPU time at 5k and 50k points and the map keeps nearly as much: the same kNN preservation,
trustworthiness and class agreement, a few per cent fewer pairs kept at 5k and about as many at
50k. umap-learn's own start and epochs remain available (``start="spectral", n_epochs=None``);
100 epochs would save another half of the fit but keep fewer neighbours and pairs.

Layout stability across epochs: a fresh projection of epoch e's embeddings is free to rotate,
reflect and rescale relative to epoch e-1's, which makes an epoch slider jump. ``align_to`` removes
that freedom with an orthogonal Procrustes fit onto the previous layout (same points, same order),
and UMAP can additionally start from the previous layout (``init=``).
"""

from __future__ import annotations

import sys
from typing import Any, Literal

import numpy as np

from core.numba_cache import import_numba

Method = Literal["pca", "umap", "tsne"]
UmapStart = Literal["pca", "spectral"]

# The map's UMAP runs this many epochs from the PCA layout (module docstring: "Which UMAP").
UMAP_EPOCHS = 200

# Up to this many points the neighbours are exact (a FAISS flat search, O(N^2 D)); above,
# a FAISS HNSW graph finds them in O(N log N) with recall@15 near 1 (benchmarks/projection.py).
EXACT_KNN_MAX = 20_000


PCA_CHUNK = 65_536  # rows per block: the covariance and the projection go block by block


def pca_2d(x: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """[N, D] -> [N, 2] coordinates on the two leading principal axes (float32). ``x`` may be a
    list of row blocks (the map's audio and visual rows), projected as if stacked, without the
    stacked copy.

    The axes are the top eigenvectors of the D x D covariance: one pass of X^T X over the data
    (O(N D^2)) instead of an SVD of the N x D matrix, which took seconds at 50k rows. The data are
    centred and multiplied block by block (no centred copy of a million rows) on one BLAS thread:
    OpenBLAS's threads spin against each other on a loaded machine, and a million-row pass took
    twenty times longer with them (``benchmarks/gui_big_map.py`` times the whole first map).
    Signs are fixed so that each axis' largest loading is positive, which makes the result
    deterministic.
    """
    from threadpoolctl import threadpool_limits

    parts = [np.asarray(p, dtype=np.float32) for p in (x if isinstance(x, list) else [x])]
    n = sum(len(p) for p in parts)
    if any(p.ndim != 2 for p in parts) or n == 0 or len({p.shape[1] for p in parts}) != 1:
        shapes = ", ".join(str(p.shape) for p in parts)
        raise ValueError(f"pca_2d needs a non-empty [N, D] array, got shape {shapes}")
    total = sum(p.sum(axis=0, dtype=np.float64) for p in parts)
    mean = (total / n).astype(np.float32)
    blocks = [p[s : s + PCA_CHUNK] for p in parts for s in range(0, len(p), PCA_CHUNK)]
    d = parts[0].shape[1]
    with threadpool_limits(1, user_api="blas"):
        covariance = np.zeros((d, d), np.float64)  # unscaled: only the axes matter
        for block in blocks:
            centred = block - mean
            covariance += centred.T @ centred
        _, vectors = np.linalg.eigh(covariance)  # ascending eigenvalues
        axes = vectors[:, ::-1][:, :2].T
        if axes.shape[0] < 2:  # D == 1: pad a zero axis so the map still has two columns
            axes = np.vstack([axes, np.zeros_like(axes)])
        signs = np.sign(axes[np.arange(2), np.abs(axes).argmax(axis=1)])
        signs[signs == 0] = 1
        weights = (axes * signs[:, None]).T.astype(np.float32)
        out = np.empty((n, 2), np.float32)
        start = 0
        for block in blocks:
            out[start : start + len(block)] = (block - mean) @ weights
            start += len(block)
    return out


def import_umap() -> Any:
    """umap-learn, with numba's on-disk cache on for the kernels ``umap_2d`` runs.

    numba reads its cache folder when it is imported, and a function's cache is chosen when the
    function is defined: both happen here, before umap is imported. umap-learn marks few of its
    functions ``cache=True``; the rest are switched on here (they are plain array kernels).
    """
    if "umap" not in sys.modules:
        import_numba()
    import umap
    import umap.layouts
    import umap.umap_
    from numba.core.caching import NullCache
    from numba.core.registry import CPUDispatcher

    for module in (umap.umap_, umap.layouts):
        for obj in vars(module).values():
            if isinstance(obj, CPUDispatcher) and isinstance(obj._cache, NullCache):
                obj.enable_caching()
    return umap


def cosine_knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices [N, k] int64, cosine distances [N, k] float32) of each row's k nearest rows, the
    row itself first: exact up to ``EXACT_KNN_MAX`` rows, a FAISS HNSW graph above.

    The exact search is FAISS's flat inner-product index, not ``core.evaluation.retrieval`` (the
    same result): that module imports torch, which the app's UMAP process otherwise never needs and
    whose import is a large share of the first UMAP of a session.
    """
    if len(x) > EXACT_KNN_MAX:
        from core.evaluation.retrieval import GalleryIndex

        sims, idx = GalleryIndex(x, "hnsw", ef_search=max(64, 2 * k)).search(x, k)
    else:
        from core.evaluation.faiss_runtime import import_faiss

        faiss = import_faiss()
        unit = np.asarray(x, dtype=np.float32)
        unit = np.ascontiguousarray(unit / np.maximum(np.linalg.norm(unit, axis=1)[:, None], 1e-12))
        index = faiss.IndexFlatIP(unit.shape[1])
        index.add(unit)
        sims, idx = index.search(unit, min(k, len(unit)))
    return idx.astype(np.int64), np.maximum(1.0 - sims, 0.0).astype(np.float32)


def umap_2d(
    x: np.ndarray,
    init: np.ndarray | None = None,
    seed: int = 0,
    n_neighbors: int = 15,
    start: UmapStart = "pca",
    n_epochs: int | None = UMAP_EPOCHS,
) -> np.ndarray:
    """[N, D] -> [N, 2] UMAP layout (cosine metric).

    The app's UMAP starts from the PCA layout and runs ``UMAP_EPOCHS`` epochs (module docstring);
    ``start="spectral", n_epochs=None`` is umap-learn's own default (a spectral embedding of the
    neighbour graph, then 500 epochs below 10,000 points and 200 above). ``init`` [N, 2], a
    previous layout of the same points, replaces ``start``. The neighbours come from
    ``cosine_knn``. Slow: run it off the GUI thread.
    """
    import warnings

    x = np.asarray(x, dtype=np.float32)
    n_neighbors = max(2, min(n_neighbors, len(x) - 1))
    first: str | np.ndarray
    if init is not None and init.shape == (len(x), 2):
        first = _umap_scaled(init)
    elif start == "pca":
        first = _umap_scaled(pca_2d(x))
    elif start == "spectral":
        first = "spectral" if len(x) >= 10 else "random"  # spectral init fails on tiny graphs
    else:
        raise ValueError(f"unknown UMAP start {start!r}; choose pca or spectral")
    umap = import_umap()
    idx, dist = cosine_knn(x, n_neighbors)
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=n_neighbors,
        metric="cosine",
        init=first,
        n_epochs=n_epochs,
        random_state=seed,
        n_jobs=1,
        precomputed_knn=(idx, dist, None),
    )
    with warnings.catch_warnings():
        # "n_jobs overridden by random_state" and "no search index: transform() unavailable"
        warnings.simplefilter("ignore", UserWarning)
        return reducer.fit_transform(x).astype(np.float32)


def _umap_scaled(layout: np.ndarray) -> np.ndarray:
    """A 2-D layout as a UMAP start: centred, each axis with a standard deviation of 5 (about
    the size umap-learn gives its own starts, which its learning rate is set for)."""
    layout = np.asarray(layout, dtype=np.float64)
    return (layout - layout.mean(axis=0)) / (layout.std(axis=0) + 1e-9) * 5.0


def tsne_2d(
    x: np.ndarray, init: np.ndarray | None = None, seed: int = 0, threads: int = 1
) -> np.ndarray:
    """[N, D] -> [N, 2] openTSNE FFT t-SNE layout (cosine metric), the layout
    benchmarks/projection.py measures: it starts from the data's PCA layout, or from ``init``
    [N, 2], a previous layout of the same points, rescaled to the small spread t-SNE's
    optimisation expects. Deterministic for a ``seed``; ``threads`` is openTSNE's ``n_jobs``.
    Slow: run it off the GUI thread.
    """
    from openTSNE import TSNE
    from openTSNE.initialization import rescale

    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) < 4:
        raise ValueError(f"t-SNE needs an [N, D] array of at least 4 rows, got shape {x.shape}")
    first: str | np.ndarray = "pca"
    if init is not None and init.shape == (len(x), 2):
        first = rescale(np.asarray(init, dtype=np.float64))
    tsne = TSNE(
        metric="cosine",
        initialization=first,
        negative_gradient_method="fft",
        n_jobs=threads,
        random_state=seed,
    )
    return np.asarray(tsne.fit(x), dtype=np.float32)


def warm_up_umap() -> None:
    """Load UMAP's kernels from the on-disk cache (compiling them on a first launch) with a tiny
    fit, so that the first layout a user asks for does not wait for them."""
    x = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
    umap_2d(x)


def procrustes(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Rotation/reflection R, scale s and translation t minimising ||s * source @ R + t - target||.

    Both are [N, 2] with rows in correspondence (the same points).
    """
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    a, b = source - mu_s, target - mu_t
    u, sigma, vt = np.linalg.svd(a.T @ b)
    rotation = u @ vt
    norm = float((a**2).sum())
    scale = float(sigma.sum() / norm) if norm > 0 else 1.0
    translation = mu_t - scale * mu_s @ rotation
    return rotation, scale, translation


def align_to(coords: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
    """``coords`` moved (rotated, reflected, scaled, shifted) to best match ``reference``.

    Returns ``coords`` unchanged when there is no reference or the shapes differ.
    """
    if reference is None or reference.shape != coords.shape or len(coords) < 3:
        return coords
    rotation, scale, translation = procrustes(
        coords.astype(np.float64), reference.astype(np.float64)
    )
    return (scale * coords @ rotation + translation).astype(np.float32)


def project(
    x: np.ndarray | list[np.ndarray],
    method: Method = "pca",
    previous: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Project ``x`` to 2-D with ``method``, aligned to ``previous`` (same points' last layout).
    ``x`` may be a list of row blocks, taken as stacked."""
    if method != "pca" and isinstance(x, list):
        x = np.vstack(x)
    if method == "pca":
        coords = pca_2d(x)
    elif method == "umap":
        coords = umap_2d(x, init=previous, seed=seed)
    elif method == "tsne":
        coords = tsne_2d(x, init=previous, seed=seed)
    else:
        raise ValueError(f"unknown projection {method!r}; choose pca, umap or tsne")
    return align_to(coords, previous)


def joint_projection(
    audio: np.ndarray,
    visual: np.ndarray,
    method: Method = "pca",
    previous: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Project audio [N, d] and visual [M, d] embeddings together into one map.

    ``previous`` is the stacked [N + M, 2] layout of the previous epoch (audio rows first).
    """
    coords = project(np.vstack([audio, visual]), method, previous, seed)
    return coords[: len(audio)], coords[len(audio) :]
