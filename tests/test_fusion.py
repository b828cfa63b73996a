"""Fusion and ranking metrics on hand-made rankings, with hand-computed figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rolesearch.search.blend import best_of, blend
from rolesearch.search.fusion import convex, minmax, ranked, rrf
from rolesearch.search.metrics import evaluate_rankings, mrr_at_k, ndcg_at_k, recall_at_k
from rolesearch.search.searcher import SearchConfig, fuse


def test_rrf_sums_reciprocal_ranks():
    fused = rrf([[1, 2, 3], [3, 1, 4]], k=60)
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[2] == pytest.approx(1 / 62)
    assert fused[4] == pytest.approx(1 / 63)
    # Found high by both rankers beats found first by one.
    assert ranked(fused) == [1, 3, 2, 4]


def test_rrf_weights_tilt_towards_one_ranker():
    fused = rrf([[1, 2], [2, 1]], k=1, weights=[2.0, 1.0])
    assert fused[1] == pytest.approx(2 / 2 + 1 / 3)
    assert fused[2] == pytest.approx(2 / 3 + 1 / 2)
    assert ranked(fused) == [1, 2]


def test_convex_combines_min_max_normalised_scores():
    dense = {1: 0.9, 2: 0.5, 3: 0.1}
    lexical = {2: 10.0, 4: 2.0}
    assert minmax(dense) == pytest.approx({1: 1.0, 2: 0.5, 3: 0.0})
    fused = convex(dense, lexical, alpha=0.5)
    assert fused == pytest.approx({1: 0.5, 2: 0.75, 3: 0.0, 4: 0.0})
    assert ranked(fused) == [2, 1, 3, 4]  # ties by doc id
    assert ranked(convex(dense, lexical, alpha=1.0))[0] == 1


def test_fuse_follows_mode_and_config():
    dense, lexical = {1: 0.9, 2: 0.8}, {2: 3.0, 3: 1.0}
    assert fuse(dense, lexical, "dense", SearchConfig()) == dense
    assert fuse(dense, lexical, "lexical", SearchConfig()) == lexical
    assert ranked(fuse(dense, lexical, "hybrid", SearchConfig(fusion="rrf")))[0] == 2
    assert fuse(dense, lexical, "hybrid", SearchConfig(fusion="convex", alpha=0.3)) == pytest.approx(
        {1: 0.3, 2: 0.7, 3: 0.0})


def test_sentence_blend_by_hand():
    own = np.array([0.5, 0.4, 0.3])
    sentences = np.array([0.9, 0.2, 0.35, 0.1])  # two sentences of passage 0, one each of 1 and 2
    owners = np.array([0, 0, 1, 2])
    assert best_of(own, sentences, owners) == pytest.approx([0.9, 0.4, 0.3])  # a sentence never lowers a passage
    assert blend(own, sentences, owners, 0.6) == pytest.approx([0.4 * 0.5 + 0.6 * 0.9, 0.4, 0.3])
    assert blend(own, sentences, owners, 1.0) == pytest.approx(best_of(own, sentences, owners))
    assert blend(own, sentences, owners, 0.0) == pytest.approx(own)

def test_ndcg_recall_mrr_by_hand():
    judged = {"a": 1, "b": 1}
    ranking = ["x", "a", "y", "b"]
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3)
    assert ndcg_at_k(ranking, judged, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(ranking, judged, 1) == 0.0
    assert recall_at_k(ranking, judged, 2) == 0.5
    assert recall_at_k(ranking, judged, 100) == 1.0
    assert mrr_at_k(ranking, judged, 10) == 0.5
    assert mrr_at_k(["x", "y"], judged, 10) == 0.0
    assert ndcg_at_k(["a", "b"], judged) == pytest.approx(1.0)


def test_evaluate_rankings_counts_unranked_queries_as_zero():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    out = evaluate_rankings({"q1": ["a"]}, qrels)
    assert out == {"ndcg@10": 0.5, "recall@100": 0.5, "mrr@10": 0.5}


def test_normalizations_by_hand():
    from rolesearch.search.fusion import normalize

    scores = {1: 4.0, 2: 2.0, 3: 1.0}
    assert normalize(scores, "minmax") == {1: 1.0, 2: pytest.approx(1 / 3), 3: 0.0}
    assert normalize(scores, "max") == {1: 1.0, 2: 0.5, 3: 0.25}
    assert normalize(scores, "rank") == {1: 1.0, 2: pytest.approx(2 / 3), 3: pytest.approx(1 / 3)}
    z = normalize(scores, "zscore")
    assert sum(z.values()) == pytest.approx(0.0) and z[1] > z[2] > z[3]
    with pytest.raises(ValueError, match="normalization"):
        normalize(scores, "softmax")


def test_zscore_convex_scores_a_missing_side_as_its_worst():
    fused = convex({1: 0.9, 2: 0.5, 3: 0.1}, {3: 10.0, 4: 2.0}, alpha=0.5, how="zscore")
    # 4 is absent from dense: it gets dense's lowest z-score there, not 0 (which is the dense mean).
    assert fused[4] < fused[3]
    assert fused[4] == pytest.approx(0.5 * min((0.1 - 0.5) / math.sqrt(0.32 / 3), 0) + 0.5 * -1.0)


def test_guard_top1_only_when_rankers_disagree():
    from rolesearch.search.fusion import guard_top1

    dense = {i: 1.0 - i / 20 for i in range(1, 16)}  # 1 best ... 15
    lexical = {15: 9.0, 1: 8.0, 2: 7.0}  # lexical's best is dense's last
    order = list(range(1, 16))
    guarded = guard_top1(order, dense, lexical)
    assert guarded[:3] == [1, 2, 15]
    # Dense ranks lexical's best within its top 10: no strong disagreement, order kept.
    assert guard_top1(order, dense, {5: 9.0, 1: 8.0}) == order
