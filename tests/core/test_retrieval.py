import numpy as np
import pytest
import torch

from core.evaluation.retrieval import (
    EXACT_MAX_ITEMS,
    GalleryIndex,
    class_hits,
    index_recall,
    topk,
)


def embeddings(n: int, d: int = 32, seed: int = 0, latent: int = 6, clusters: int = 20):
    """Clustered, low intrinsic dimension data, like learned embeddings."""
    r = np.random.default_rng(1234)
    centres = 2 * r.standard_normal((clusters, latent))
    proj = r.standard_normal((latent, d))
    r = np.random.default_rng(seed)
    z = centres[r.integers(0, clusters, n)] + r.standard_normal((n, latent))
    return (z @ proj + 0.3 * r.standard_normal((n, d))).astype(np.float32)


def brute_force(q: np.ndarray, g: np.ndarray, k: int):
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    gn = g / np.linalg.norm(g, axis=1, keepdims=True)
    sims = qn.astype(np.float64) @ gn.T.astype(np.float64)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), order


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_topk_matches_brute_force_cosine(chunk):
    q, g = embeddings(50, seed=1), embeddings(400, seed=2)
    scores, idx = topk(q, g, 10, chunk=chunk)
    ref_scores, ref_idx = brute_force(q, g, 10)
    assert scores.dtype == np.float32 and idx.dtype == np.int64
    assert scores.shape == idx.shape == (50, 10)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    np.testing.assert_array_equal(idx, ref_idx)


def test_topk_normalises_inputs_unless_told_not_to():
    q, g = embeddings(5, seed=1), embeddings(100, seed=2)
    scores, _ = topk(q * 7.0, torch.from_numpy(g) * 3.0, 3)
    assert np.all(scores <= 1.0 + 1e-6)
    raw_scores, _ = topk(q, g, 3, normalize=False)
    assert raw_scores.max() > 1.5  # plain inner products of unnormalised vectors


def test_topk_k_larger_than_gallery_ranks_the_whole_gallery():
    q, g = embeddings(3, seed=1), embeddings(5, seed=2)
    scores, idx = topk(q, g, 50)
    assert idx.shape == (3, 5)
    assert all(sorted(row) == list(range(5)) for row in idx)
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_topk_rejects_bad_arguments():
    with pytest.raises(ValueError, match="dimension"):
        topk(np.ones((2, 3)), np.ones((4, 5)), 1)
    with pytest.raises(ValueError, match="k must be"):
        topk(np.ones((2, 3)), np.ones((4, 3)), 0)
    with pytest.raises(ValueError, match="2-D"):
        topk(np.ones(3), np.ones((4, 3)), 1)


@pytest.mark.parametrize("kind", ["exact", "flat"])
def test_exact_kinds_match_brute_force(kind):
    q, g = embeddings(40, seed=3), embeddings(1000, seed=4)
    index = GalleryIndex(g, kind)
    scores, idx = index.search(q, 10)
    ref_scores, ref_idx = brute_force(q, g, 10)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    np.testing.assert_array_equal(idx, ref_idx)
    assert len(index) == 1000 and index.kind == kind


@pytest.mark.parametrize(("kind", "min_recall"), [("ivf", 0.9), ("hnsw", 0.9)])
def test_approximate_kinds_have_high_recall_at_10(kind, min_recall):
    q, g = embeddings(200, seed=5), embeddings(20_000, seed=6)
    index = GalleryIndex(g, kind)
    scores, idx = index.search(q, 10)
    _, ref_idx = brute_force(q, g, 10)
    assert index_recall(idx, ref_idx) >= min_recall
    assert scores.dtype == np.float32 and idx.dtype == np.int64
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_ivf_recall_reaches_one_when_every_list_is_probed():
    q, g = embeddings(50, seed=7), embeddings(5_000, seed=8)
    index = GalleryIndex(g, "ivf", nlist=16)
    index.set_search_params(nprobe=16)
    _, idx = index.search(q, 10)
    _, ref_idx = brute_force(q, g, 10)
    assert index_recall(idx, ref_idx) == 1.0


def test_auto_is_exact_up_to_the_threshold_and_faiss_above():
    g = embeddings(300, seed=9)
    assert GalleryIndex(g).kind == "exact"
    assert GalleryIndex(g, exact_max=100).kind == "ivf"
    assert EXACT_MAX_ITEMS >= 10_000


def test_unknown_kind_and_dimension_mismatch_are_errors():
    with pytest.raises(ValueError, match="unknown index kind"):
        GalleryIndex(np.ones((4, 3)), "lsh")
    index = GalleryIndex(embeddings(100), "flat")
    with pytest.raises(ValueError, match="dimension"):
        index.search(np.ones((1, 5)), 3)


def test_memory_estimate_covers_the_vectors():
    g = embeddings(2000)
    for kind in ("exact", "flat", "ivf", "hnsw"):
        assert GalleryIndex(g, kind).memory_bytes() >= g.nbytes


def test_class_hits_marks_same_class_and_treats_missing_as_miss():
    gallery_labels = np.array([0, 1, 1, 2])
    query_labels = np.array([1, 2])
    indices = np.array([[1, 0, 2], [3, -1, 1]])
    np.testing.assert_array_equal(
        class_hits(indices, gallery_labels, query_labels),
        [[True, False, True], [True, False, False]],
    )


def test_index_recall_counts_overlap_regardless_of_order():
    assert index_recall(np.array([[3, 2, 1]]), np.array([[1, 2, 3]])) == 1.0
    assert index_recall(np.array([[3, 9, 8]]), np.array([[1, 2, 3]])) == pytest.approx(1 / 3)
