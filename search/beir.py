"""BEIR-format benchmarks scored: the judged queries ranked over a version built by ingest.beir, nDCG@10,
Recall@100 and MRR@10 per mode. "dense-passage" ranks by the documents' own vectors only: the figure the
model's published results measure."""

from __future__ import annotations

from dataclasses import replace

from rolesearch.encoder.base import Encoder
from rolesearch.search.baseline import BaselineSearcher
from rolesearch.search.index import SearchIndex
from rolesearch.search.metrics import evaluate_rankings
from rolesearch.search.searcher import MODES, SearchConfig, Searcher

DEPTH = 100  # Recall@100 needs the top 100


def rank_queries(searcher: Searcher, queries: dict[str, str], mode: str, k: int = DEPTH) -> dict[str, list[str]]:
    """The top k document ids for every query, in one mode (no section diversity: a document is its own section)."""
    return {
        qid: [h.passage.id for h in searcher.search(text, k=k, mode=mode, max_per_section=0, highlights=False).hits]
        for qid, text in queries.items()
    }


def evaluate_index(index: SearchIndex, embedder: Encoder, queries: dict[str, str], qrels: dict[str, dict[str, int]],
                   config: SearchConfig = SearchConfig(), modes: tuple[str, ...] = MODES,
                   rankers: tuple[str, ...] = ("ours",)) -> dict[str, dict[str, float]]:
    """nDCG@10, Recall@100 and MRR@10 per mode over a loaded BEIR version.

    With sentence vectors on (config.sentence_vectors) and dense among the modes, "dense-passage"
    comes first: dense ranking by the documents' own vectors, comparable with published figures.
    With "baseline" among the rankers, "baseline" comes last: search.baseline's hybrid over the same index.
    """
    results = {}
    if "ours" in rankers:
        if config.sentence_vectors and "dense" in modes:
            plain = Searcher(index, embedder, replace(config, sentence_vectors=False))
            results["dense-passage"] = evaluate_rankings(rank_queries(plain, queries, "dense"), qrels)
        searcher = Searcher(index, embedder, config)
        for mode in modes:
            results[mode] = evaluate_rankings(rank_queries(searcher, queries, mode), qrels)
    if "baseline" in rankers:
        baseline = BaselineSearcher(index, embedder, config.candidates)
        results["baseline"] = evaluate_rankings(rank_queries(baseline, queries, "hybrid"), qrels)
    return results
