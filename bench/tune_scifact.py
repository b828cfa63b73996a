"""Tune the fusion knobs on SciFact's train split (never the test split) and print nDCG@10 for each setting.

    .venv/bin/python bench/tune_scifact.py [--beir ../shared/benchmarks/scifact] [--split train]

Lexical candidates are computed once per query, dense ones once per sentence weight; each
setting then only re-fuses them. sentence_weight 0 is the document's own vector alone.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rolesearch.cli.beir import beir_index
from rolesearch.ingest.beir import default_cache_dir, load_beir
from rolesearch.search.beir import DEPTH
from rolesearch.search.fusion import ranked
from rolesearch.search.metrics import evaluate_rankings
from rolesearch.search.searcher import SearchConfig, Searcher, fuse
from rolesearch.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--beir", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/benchmarks/scifact")
    ap.add_argument("--split", default="train")
    args = ap.parse_args()
    if args.split == "test":
        raise SystemExit("tune on train; the test split is for reporting")
    data = load_beir(args.beir, args.split)
    embedder = Settings().embedder()  # ROLESEARCH_MODEL and ROLESEARCH_BACKEND as everywhere else
    weights = (0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)  # sentence_weight: 0 ignores the sentence vectors
    with tempfile.TemporaryDirectory() as tmp:
        index = beir_index(data, Path(tmp) / "index", embedder, default_cache_dir())
        ids = [p.id for p in index.passages]
        depth = 4 * DEPTH
        lexical = {qid: Searcher(index, embedder).lexical_scores(q, depth) for qid, q in data.queries.items()}
        dense = {}
        for w in weights:
            searcher = Searcher(index, embedder, SearchConfig(sentence_weight=w))
            dense[w] = {qid: searcher.dense_scores(q, depth) for qid, q in data.queries.items()}

    def score(config: SearchConfig, mode: str = "hybrid") -> float:
        d = dense[config.sentence_weight]
        rankings = {qid: [ids[i] for i in ranked(fuse(d[qid], lexical[qid], mode, config))[:DEPTH]] for qid in lexical}
        return evaluate_rankings(rankings, data.qrels)["ndcg@10"]

    results = [(score(SearchConfig(), "lexical"), "lexical")]
    for w in weights:
        results.append((score(SearchConfig(sentence_weight=w), "dense"), f"dense sentence_weight={w}"))
        for k in (1, 10, 60):
            for rw in (0.75, 1.0, 1.5):
                results.append((score(SearchConfig(fusion="rrf", rrf_k=k, rrf_dense_weight=rw, sentence_weight=w)),
                                f"rrf k={k} dense_weight={rw} sentence_weight={w}"))
        for alpha in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
            results.append((score(SearchConfig(fusion="convex", alpha=alpha, sentence_weight=w)),
                            f"convex alpha={alpha} sentence_weight={w}"))
    for s, name in sorted(results, reverse=True):
        print(f"{s:.4f}  {name}")


if __name__ == "__main__":
    main()
