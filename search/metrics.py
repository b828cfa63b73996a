"""Pure ranking metrics over judged queries, computed as BEIR (pytrec_eval) computes them."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

Qrels = Mapping[str, Mapping[str, int]]  # query id -> {doc id: graded relevance}


def ndcg_at_k(ranking: Sequence[str], judged: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with linear gain: sum rel / log2(rank + 1), over the ideal ordering of the judgements."""
    dcg = sum(judged.get(doc, 0) / math.log2(rank + 1) for rank, doc in enumerate(ranking[:k], start=1))
    ideal = sorted((r for r in judged.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(rank + 1) for rank, r in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranking: Sequence[str], judged: Mapping[str, int], k: int = 100) -> float:
    """Share of the relevant documents that appear in the top k."""
    relevant = {d for d, r in judged.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def mrr_at_k(ranking: Sequence[str], judged: Mapping[str, int], k: int = 10) -> float:
    """1 / rank of the first relevant document in the top k, else 0."""
    for rank, doc in enumerate(ranking[:k], start=1):
        if judged.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def evaluate_rankings(rankings: Mapping[str, Sequence[str]], qrels: Qrels) -> dict[str, float]:
    """Mean nDCG@10, Recall@100 and MRR@10 over every judged query (an unranked query scores 0)."""
    n = len(qrels) or 1
    totals = {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    for qid, judged in qrels.items():
        ranking = rankings.get(qid, ())
        totals["ndcg@10"] += ndcg_at_k(ranking, judged, 10)
        totals["recall@100"] += recall_at_k(ranking, judged, 100)
        totals["mrr@10"] += mrr_at_k(ranking, judged, 10)
    return {name: round(total / n, 4) for name, total in totals.items()}
