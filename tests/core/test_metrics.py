import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from core.evaluation.metrics import (
    MapScores,
    average_precisions,
    cross_modal_map,
    cross_modal_metrics,
    direction_metrics,
    l2_normalize,
    mean_ap,
    partner_ranks,
)


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
    assert set(scores.as_dict(ranks=False)) == {"a2v", "v2a", "avg", "n"}
    assert set(scores.as_dict()) == {"a2v", "v2a", "avg", "n", "recall_at_1", "median_rank"}


# ----- the other metrics, each against a plain loop ----------------------------------------------


def sims_of(queries, gallery) -> np.ndarray:
    return (l2_normalize(queries) @ l2_normalize(gallery).T).numpy().astype(np.float64)


def pessimistic_order(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Best first; among equal scores the irrelevant items first (ties against the query)."""
    return np.lexsort((relevant, -scores))


def reference_map_at_r(scores, relevant) -> tuple[float, float]:
    r = int(relevant.sum())
    if r == 0:
        return math.nan, math.nan
    ranked = relevant[pessimistic_order(scores, relevant)][:r]
    hits = np.cumsum(ranked)
    precision_sum = sum(hits[i] / (i + 1) for i in range(r) if ranked[i])
    return precision_sum / r, hits[-1] / r


def reference_rank(scores, partner) -> int:
    return int((scores >= scores[partner]).sum())


def reference_topk_counts(scores, gallery_labels, k, num_classes) -> np.ndarray:
    order = np.lexsort((np.arange(len(scores)), -scores))[:k]  # ties in gallery order
    return np.bincount(gallery_labels[order], minlength=num_classes)


def check_direction(queries, gallery, ql, gl, partners=None, k=3, **kw):
    ql, gl = np.asarray(ql), np.asarray(gl)
    out = direction_metrics(queries, gallery, ql, gl, partners=partners, k=k, **kw)
    # The float32 similarities decide ties, as in the implementation.
    sims32 = (l2_normalize(queries) @ l2_normalize(gallery).T).numpy()
    c = out.num_classes
    for i in range(len(sims32)):
        relevant = gl == ql[i]
        s = sims32[i]
        m_at_r, r_prec = reference_map_at_r(s, relevant)
        np.testing.assert_allclose(out.ap[i], reference_ap(s, relevant), atol=1e-9)
        np.testing.assert_allclose(out.map_at_r[i], m_at_r, atol=1e-9)
        np.testing.assert_allclose(out.r_precision[i], r_prec, atol=1e-9)
        if partners is not None:
            assert out.partner_rank[i] == reference_rank(s, partners[i])
        if k:
            expected = reference_topk_counts(s, gl, min(k, len(gl)), c)
            np.testing.assert_array_equal(out.topk_counts[i], expected)
    return out


def tied_case(nq, ng, directions=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((directions, 3)).astype(np.float32)
    q = dirs[rng.integers(0, directions, nq)]
    g = dirs[rng.integers(0, directions, ng)] * rng.uniform(0.5, 2.0, (ng, 1)).astype(np.float32)
    return q, g, rng.integers(0, classes, nq), rng.integers(0, classes, ng)


@pytest.mark.parametrize("seed", range(3))
def test_every_per_query_metric_matches_a_loop_without_ties(seed):
    q, g, ql, gl = random_case(30, 30, classes=4, seed=seed)
    check_direction(q, g, ql, gl, partners=np.arange(30), k=5)


@pytest.mark.parametrize("seed", range(3))
def test_every_per_query_metric_matches_a_loop_with_ties(seed):
    q, g, ql, gl = tied_case(25, 40, seed=seed)
    partners = np.random.default_rng(seed).integers(0, 40, 25)
    out = check_direction(q, g, ql, gl, partners=partners, k=4)
    assert (out.partner_rank > 1).any()  # ties push partners down


def test_single_item_class_and_classes_absent_from_one_side():
    q, g, ql, gl = random_case(20, 24, classes=3, seed=4)
    gl[gl == 2] = 0
    gl[7] = 2  # class 2: one gallery item
    ql[:3] = 2
    ql[3:5] = 4  # class 4: queries only
    gl[10:12] = 5  # class 5: gallery only
    out = check_direction(q, g, ql, gl, partners=np.arange(20), k=6)
    assert np.isnan(out.ap[3:5]).all() and np.isnan(out.map_at_r[3:5]).all()
    assert out.num_classes == 6
    class_ap = out.class_ap()
    assert np.isnan(class_ap[[4, 5]]).all()  # no scored query of class 4, no query of class 5
    for c in (0, 1, 2):
        assert class_ap[c] == pytest.approx(np.nanmean(out.ap[ql == c]))
    assert out.class_balanced_map() == pytest.approx(np.mean(class_ap[:3]))
    # A single relevant item: AP, MAP@R and R-precision all reduce to whether/where it ranks.
    sims = (l2_normalize(q) @ l2_normalize(g).T).numpy()
    rank = (sims[:3] >= sims[:3, 7:8]).sum(axis=1)
    np.testing.assert_allclose(out.ap[:3], 1 / rank)
    np.testing.assert_allclose(out.r_precision[:3], (rank == 1).astype(float))


def test_rank_summaries_and_sklearn():
    from sklearn.metrics import label_ranking_average_precision_score, top_k_accuracy_score

    q, g, ql, gl = random_case(40, 40, classes=4, seed=9)
    out = direction_metrics(q, g, ql, gl, partners=np.arange(40))
    ranks = out.partner_rank
    sims = sims_of(q, g)
    onehot = np.eye(40, dtype=int)
    assert out.mean_reciprocal_rank() == pytest.approx(
        label_ranking_average_precision_score(onehot, sims)
    )
    for k in (1, 5, 10):
        assert out.recall_at(k) == pytest.approx(
            top_k_accuracy_score(np.arange(40), sims, k=k, labels=np.arange(40))
        )
        assert out.recall_at(k) == pytest.approx(np.mean(ranks <= k))
    assert out.median_rank() == np.median(ranks)


def test_mrr_follows_sklearn_with_ties():
    from sklearn.metrics import label_ranking_average_precision_score

    q, g, ql, gl = tied_case(20, 20, seed=5)
    out = direction_metrics(q, g, ql, gl, partners=np.arange(20), k=None)
    sims = (l2_normalize(q) @ l2_normalize(g).T).numpy()
    assert out.mean_reciprocal_rank() == pytest.approx(
        label_ranking_average_precision_score(np.eye(20, dtype=int), sims)
    )


def test_confusion_and_the_queries_behind_a_cell():
    q, g, ql, gl = random_case(30, 35, classes=3, seed=2)
    out = direction_metrics(q, g, ql, gl, k=5)
    sims = (l2_normalize(q) @ l2_normalize(g).T).numpy()
    counts = np.array([reference_topk_counts(s, gl, 5, 3) for s in sims])
    expected = np.zeros((3, 3), dtype=int)
    for label, row in zip(ql, counts, strict=True):
        expected[label] += row
    np.testing.assert_array_equal(out.confusion_counts(), expected)
    np.testing.assert_allclose(out.confusion().sum(axis=1), 1.0)
    for i in range(3):
        for j in range(3):
            listed = out.queries_retrieving(i, j)
            assert set(listed) == {r for r in range(30) if ql[r] == i and counts[r, j] > 0}
            assert list(counts[listed, j]) == sorted(counts[listed, j], reverse=True)


def exactly_tied_case(nq, ng, seed=0):
    """Axis vectors scaled by powers of two: every cosine is exactly -1, 0 or 1 whatever the
    matmul kernel of a chunk shape, so the heavy ties are the same in every chunking."""
    rng = np.random.default_rng(seed)
    axes = np.vstack([np.eye(3), -np.eye(3)]).astype(np.float32)
    q = axes[rng.integers(0, 6, nq)] * 2.0 ** rng.integers(-2, 3, (nq, 1))
    g = axes[rng.integers(0, 6, ng)] * 2.0 ** rng.integers(-2, 3, (ng, 1))
    return q, g, rng.integers(0, 3, nq), rng.integers(0, 3, ng)


def test_chunks_and_threads_do_not_change_anything():
    q, g, ql, gl = exactly_tied_case(37, 45, seed=3)
    base = direction_metrics(q, g, ql, gl, partners=np.arange(37), k=7, chunk=1000, threads=1)
    for chunk, threads in ((1, 1), (4, 2), (10, 3)):
        other = direction_metrics(
            q, g, ql, gl, partners=np.arange(37), k=7, chunk=chunk, threads=threads
        )
        for name in ("ap", "map_at_r", "r_precision", "partner_rank", "topk_counts"):
            np.testing.assert_array_equal(getattr(other, name), getattr(base, name))


def test_cross_modal_metrics_summary_is_json_without_nan():
    import json

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 50)
    labels[0] = 3  # a class with one pair: its queries have only their partner as relevant
    audio = rng.standard_normal((50, 8)).astype(np.float32)
    visual = audio + 0.3 * rng.standard_normal((50, 8)).astype(np.float32)
    metrics = cross_modal_metrics(audio, visual, labels, num_classes=5)
    summary = metrics.summary(["dog", "cat", "car", "bell", "rain"])
    text = json.dumps(summary, allow_nan=False)
    assert "NaN" not in text
    assert set(summary["per_class"]["a2v"]) == {"dog", "cat", "car", "bell"}
    assert summary["recall"]["v2a"]["1"] == metrics.v2a.recall_at(1)
    assert summary["median_rank"]["a2v"] == metrics.a2v.median_rank()
    scores = metrics.map_scores()
    assert scores == cross_modal_map(audio, visual, labels)
    assert scores.recall_at_1 == {"a2v": metrics.a2v.recall_at(1), "v2a": metrics.v2a.recall_at(1)}


def test_bad_inputs_are_clear_errors():
    q, g, ql, gl = random_case(5, 6, classes=2)
    q[3, 1] = np.nan
    with pytest.raises(ValueError, match="queries row 3 is not finite"):
        direction_metrics(q, g, ql, gl)
    with pytest.raises(ValueError, match="labels"):
        direction_metrics(g, g, ql, gl)
    with pytest.raises(ValueError, match="partners"):
        direction_metrics(g, g, gl, gl, partners=np.arange(5))


def test_partner_ranks_alone_equal_the_full_pass():
    q, g, ql, gl = exactly_tied_case(30, 30, seed=8)
    partners = np.random.default_rng(8).permutation(30)
    full = direction_metrics(q, g, ql, gl, partners=partners, k=None)
    np.testing.assert_array_equal(partner_ranks(q, g, partners, chunk=7), full.partner_rank)
    np.testing.assert_array_equal(
        partner_ranks(q, g), direction_metrics(q, g, ql, gl, partners=np.arange(30)).partner_rank
    )


def test_failures_are_the_lowest_ap_and_the_worst_ranked_queries():
    q, g, ql, gl = random_case(40, 40, classes=4, seed=12)
    ql[5] = 7  # no relevant item: never listed as a low AP
    out = direction_metrics(q, g, ql, gl, partners=np.arange(40))
    low = out.lowest_ap(6)
    assert 5 not in low and list(out.ap[low]) == sorted(out.ap[low])
    assert out.ap[low[-1]] <= np.nanmin(np.delete(out.ap, np.r_[low, 5]))
    worst = out.worst_ranked(6)
    assert out.partner_rank[worst[0]] == out.partner_rank.max()
    assert list(out.partner_rank[worst]) == sorted(out.partner_rank[worst], reverse=True)


def test_progress_counts_chunks_and_a_cancel_stops_the_work():
    q, g, ql, _ = random_case(40, 40, classes=3, seed=4)
    seen = []
    cross_modal_metrics(q, g, ql, chunk=10, threads=2, progress=lambda d, t: seen.append((d, t)))
    assert sorted(seen) == [(d, 8) for d in range(1, 9)]  # 4 chunks per direction

    class Cancelled(Exception):
        pass

    calls = []

    def cancel_at_two(done, total):
        calls.append(done)
        if done == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        cross_modal_metrics(q, g, ql, chunk=5, threads=1, progress=cancel_at_two)
    assert calls == [1, 2]  # nothing ran after the cancel


@pytest.mark.parametrize("shared", [True, False])
def test_both_directions_of_a_paired_set_match_loops_with_ties(monkeypatch, shared):
    # V2A reads A2V's similarity matrix by columns when it is small enough to share.
    import core.evaluation.metrics

    monkeypatch.setattr(core.evaluation.metrics, "SHARED_SIMS_BYTES", 2**30 if shared else 0)
    audio, visual, labels, _ = exactly_tied_case(33, 33, seed=6)
    labels[4] = 3  # a class with one pair
    out = cross_modal_metrics(audio, visual, labels, k=4, chunk=5, threads=2)
    for direction, (q, g) in (("a2v", (audio, visual)), ("v2a", (visual, audio))):
        expected = check_direction(q, g, labels, labels, partners=np.arange(33), k=4)
        got = getattr(out, direction)
        for name in ("ap", "map_at_r", "r_precision", "partner_rank", "topk_counts"):
            np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))


def test_rank_keys_order_and_tie_like_the_scores():
    from core.evaluation.ranking_kernels import fill_rank_keys

    tiny = np.float32(1e-45)  # the smallest denormal
    scores = np.array(
        [
            [
                -1.9,
                -1.0,
                -0.5,
                -tiny,
                -0.0,
                0.0,
                tiny,
                0.25,
                1.0,
                np.nextafter(1, 2, dtype=np.float32),
            ]
        ],
        dtype=np.float32,
    )
    n = scores.shape[1]
    keys = np.empty((1, n), dtype=np.int32)
    # Columns 4:8 relevant: their keys are even, the others odd.
    assert fill_rank_keys(scores.view(np.int32), False, 0, np.array([4]), np.array([8]), keys)
    assert list(keys[0] & 1) == [1, 1, 1, 1, 0, 0, 0, 0, 1, 1]
    score_keys = keys[0] >> 1
    assert (np.diff(score_keys) > 0).sum() == n - 2 and score_keys[4] == score_keys[5]
    transposed = np.empty((1, n), dtype=np.int32)
    fill_rank_keys(
        scores.T.copy().view(np.int32), True, 0, np.array([4]), np.array([8]), transposed
    )
    np.testing.assert_array_equal(transposed, keys)
    # A score of 2 or more is no cosine and would overflow the key: refused.
    assert not fill_rank_keys(
        np.float32([[2.0]]).view(np.int32), False, 0, np.array([0]), np.array([1]), keys[:, :1]
    )


def test_a_large_split_is_scored_on_a_seeded_sample_of_queries_against_the_whole_gallery():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 5, 300)
    audio = rng.standard_normal((300, 8)).astype(np.float32) + labels[:, None]
    visual = rng.standard_normal((300, 8)).astype(np.float32) + labels[:, None]
    full = cross_modal_metrics(audio, visual, labels, k=None)
    sampled = cross_modal_map(audio, visual, labels, max_queries=50, seed=1)
    rows = np.sort(np.random.default_rng(1).choice(300, 50, replace=False))
    assert (sampled.n, sampled.sampled_from) == (50, 300)
    # each sampled query's AP is its AP in the full protocol: the gallery is whole
    assert sampled.a2v == pytest.approx(np.nanmean(full.a2v.ap[rows]), abs=1e-6)
    assert sampled.v2a == pytest.approx(np.nanmean(full.v2a.ap[rows]), abs=1e-6)
    assert sampled == cross_modal_map(audio, visual, labels, max_queries=50, seed=1)
    assert "50 of 300" in sampled.sample_note()
    whole = cross_modal_map(audio, visual, labels, max_queries=300)
    assert whole.sampled_from is None and whole.sample_note() == ""
    assert whole.avg == pytest.approx(full.map_scores().avg)
