import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from core.metrics import MapScores, average_precisions, cross_modal_map, l2_normalize, mean_ap


def reference_ap(scores: np.ndarray, relevant: np.ndarray) -> float:
    """AP of one ranking, written plainly: walk the items best first; at each relevant item take
    precision at the end of its block of tied scores (scikit-learn's rule); average over hits."""
    n_rel = int(relevant.sum())
    if n_rel == 0:
        return math.nan
    total = 0.0
    for i in range(len(scores)):
        if relevant[i]:
            at_or_above = scores >= scores[i]  # the whole tie block counts as one threshold
            total += relevant[at_or_above].sum() / at_or_above.sum()
    return total / n_rel


def reference_aps(queries, gallery, query_labels, gallery_labels) -> np.ndarray:
    sims = (l2_normalize(queries) @ l2_normalize(gallery).T).numpy()
    return np.array(
        [
            reference_ap(sims[i], np.asarray(gallery_labels) == query_labels[i])
            for i in range(len(sims))
        ]
    )


def sklearn_aps(queries, gallery, query_labels, gallery_labels) -> np.ndarray:
    sims = (l2_normalize(queries) @ l2_normalize(gallery).T).numpy()
    out = []
    for i in range(len(sims)):
        relevant = np.asarray(gallery_labels) == query_labels[i]
        out.append(average_precision_score(relevant, sims[i]) if relevant.any() else math.nan)
    return np.array(out)


def random_case(nq: int, ng: int, classes: int, d: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((nq, d)).astype(np.float32),
        rng.standard_normal((ng, d)).astype(np.float32),
        rng.integers(0, classes, nq),
        rng.integers(0, classes, ng),
    )


def test_reference_matches_sklearn_on_a_hand_made_ranking_with_ties():
    scores = np.array([0.9, 0.5, 0.5, 0.5, 0.1, 0.1])
    relevant = np.array([False, True, False, True, True, False])
    # Block {0.9}: no hit. Block {0.5}x3: 2 hits, precision 2/4 each. Block {0.1}x2: 3/6.
    expected = (2 / 4 + 2 / 4 + 3 / 6) / 3
    assert reference_ap(scores, relevant) == pytest.approx(expected)
    assert average_precision_score(relevant, scores) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(4))
def test_average_precisions_match_reference_and_sklearn_without_ties(seed):
    case = random_case(30, 50, classes=4, seed=seed)
    ap = average_precisions(*case)
    np.testing.assert_allclose(ap, reference_aps(*case), atol=1e-6)
    np.testing.assert_allclose(ap, sklearn_aps(*case), atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_ties_follow_sklearn(seed):
    # Few distinct directions: many items share a score with each other.
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((4, 3)).astype(np.float32)
    queries = directions[rng.integers(0, 4, 25)]
    gallery = directions[rng.integers(0, 4, 40)] * rng.uniform(0.5, 2.0, (40, 1)).astype(np.float32)
    ql, gl = rng.integers(0, 3, 25), rng.integers(0, 3, 40)
    ap = average_precisions(queries, gallery, ql, gl)
    np.testing.assert_allclose(ap, reference_aps(queries, gallery, ql, gl), atol=1e-6)
    np.testing.assert_allclose(ap, sklearn_aps(queries, gallery, ql, gl), atol=1e-6)


def test_all_scores_tied_gives_the_class_fraction():
    ap = average_precisions(np.ones((2, 3)), np.ones((10, 3)), [0, 1], [0] * 3 + [1] * 7)
    np.testing.assert_allclose(ap, [0.3, 0.7])


def test_negative_zero_and_zero_are_one_tie():
    # Orthogonal vectors give +0.0 or -0.0 similarities; sklearn sees one threshold.
    q = np.array([[1.0, 0.0]], dtype=np.float32)
    g = np.array([[0.0, 1.0], [-0.0, -1.0], [1.0, 0.0], [-0.0, 1.0]], dtype=np.float32)
    ql, gl = [0], [0, 1, 1, 0]
    ap = average_precisions(q, g, ql, gl)
    np.testing.assert_allclose(ap, sklearn_aps(q, g, ql, gl), atol=1e-9)


def test_class_with_a_single_gallery_item():
    q, g, ql, gl = random_case(12, 20, classes=3, seed=7)
    gl[:] = np.where(gl == 2, 0, gl)
    gl[5] = 2  # class 2 has exactly one gallery item
    ql[:4] = 2
    ap = average_precisions(q, g, ql, gl)
    np.testing.assert_allclose(ap, sklearn_aps(q, g, ql, gl), atol=1e-6)
    # With one relevant item, AP is 1 / its rank.
    sims = (l2_normalize(q) @ l2_normalize(g).T).numpy()
    rank = (sims[:4] >= sims[:4, 5:6]).sum(axis=1)
    np.testing.assert_allclose(ap[:4], 1.0 / rank, atol=1e-6)


def test_queries_without_relevant_items_are_nan_and_left_out_of_the_mean():
    q, g, ql, gl = random_case(10, 30, classes=3, seed=3)
    ql[[2, 6]] = 9  # no gallery item has class 9
    ap = average_precisions(q, g, ql, gl)
    assert np.isnan(ap[[2, 6]]).all()
    assert not np.isnan(np.delete(ap, [2, 6])).any()
    assert mean_ap(ap) == pytest.approx(np.delete(ap, [2, 6]).mean())
    assert math.isnan(mean_ap(np.array([math.nan, math.nan])))


def test_chunking_and_input_types_do_not_change_the_result():
    q, g, ql, gl = random_case(37, 45, classes=5, seed=11)
    full = average_precisions(q, g, ql, gl)
    for chunk in (1, 5, 1000):
        np.testing.assert_allclose(average_precisions(q, g, ql, gl, chunk=chunk), full)
    as_torch = average_precisions(
        torch.from_numpy(q), torch.from_numpy(g), torch.from_numpy(ql), torch.from_numpy(gl)
    )
    np.testing.assert_allclose(as_torch, full)


def test_perfect_and_scaled_embeddings():
    labels = np.repeat(np.arange(3), 4)
    onehot = np.eye(3, dtype=np.float32)[labels]
    ap = average_precisions(onehot, 5.0 * onehot, labels, labels)
    np.testing.assert_allclose(ap, 1.0)


def test_cross_modal_map_averages_both_directions_and_counts_scored_queries():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, 60)
    audio = rng.standard_normal((60, 8)).astype(np.float32)
    visual = audio + 0.5 * rng.standard_normal((60, 8)).astype(np.float32)
    scores = cross_modal_map(audio, visual, labels)
    assert isinstance(scores, MapScores)
    a2v = np.nanmean(sklearn_aps(audio, visual, labels, labels))
    v2a = np.nanmean(sklearn_aps(visual, audio, labels, labels))
    assert scores.a2v == pytest.approx(a2v, abs=1e-6)
    assert scores.v2a == pytest.approx(v2a, abs=1e-6)
    assert scores.avg == pytest.approx((a2v + v2a) / 2, abs=1e-6)
    assert scores.n == 60
    assert set(scores.as_dict()) == {"a2v", "v2a", "avg", "n"}
